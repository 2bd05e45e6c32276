#include "blob_store.hpp"

#include <ckpt/errors.hpp>

#include <sodium.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <random>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ckpt::model_registry::detail {

namespace {

std::string errno_text() { return std::strerror(errno); }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool is_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void write_all(int fd, std::span<const std::byte> bytes, const fs::path& path) {
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    // Linux writes at most 2 GiB - 4 KiB per call.
    const size_t chunk = std::min<size_t>(left, size_t{1} << 30);
    const ssize_t n = ::write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot write " + path.string() + ": " + errno_text());
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

std::string blake2b256_hex(std::span<const std::byte> bytes) {
  static const int ready = sodium_init();
  (void)ready;
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr, 0);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return std::string(hex, 64);
}

StoreLock::StoreLock(const fs::path& store, Mode mode, double wait_seconds) {
  const fs::path path = store / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw IoError("cannot open the store's lock " + path.string() + ": " + errno_text());
  const int op = (mode == Mode::shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  for (;;) {
    if (::flock(fd_, op) == 0) return;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const std::string why = errno_text();
      ::close(fd_);
      throw IoError("cannot lock " + path.string() + ": " + why);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd_);
      throw IoError("the store " + store.string() + " stayed locked for " + std::to_string(static_cast<int>(wait_seconds)) +
                    " s (" + (mode == Mode::shared ? "a gc is running" : "registrations are in progress") +
                    "); try again later");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

StoreLock::~StoreLock() {
  if (fd_ >= 0) ::close(fd_);
}

Blob::Blob(const fs::path& path, uint64_t expected_size, const std::string& what) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0)
    throw IntegrityError(what + ": its blob " + path.string() + " cannot be opened: " + errno_text());
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw IntegrityError(what + ": its blob " + path.string() + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != expected_size)
    throw IntegrityError(what + ": its blob " + path.string() + " holds " + std::to_string(st.st_size) +
                         " bytes, the tensor needs " + std::to_string(expected_size));
  size_ = static_cast<size_t>(expected_size);
  if (size_ == 0) return;
  // Small blobs are read: a pull keeps every blob until the writer is done, and a mapping each
  // would run into the kernel's limit on mappings (vm.max_map_count, 65530) for a model of
  // 100,000 small tensors.
  if (size_ < kMapThreshold) {
    copy_.resize(size_);
    size_t got = 0;
    while (got < size_) {
      const ssize_t n = ::pread(f.fd, copy_.data() + got, size_ - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw IoError("cannot read " + path.string() + ": " + (n < 0 ? errno_text() : std::string("file shrank")));
      got += static_cast<size_t>(n);
    }
    data_ = copy_.data();
    return;
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, f.fd, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw IoError("cannot map " + path.string() + ": " + errno_text());
  }
  ::madvise(map_, size_, MADV_SEQUENTIAL);
  data_ = static_cast<const std::byte*>(map_);
}

Blob::~Blob() {
  if (map_) ::munmap(map_, size_);
}

namespace {
// Nothing inside the store may be a symbolic link: gc removes what it finds there and
// registrations write there, and through a link either would reach outside the store.
void refuse_link(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw IoError("the store's " + p.string() + " is " + (S_ISLNK(st.st_mode) ? "a symbolic link" : "not a folder") +
                  "; a store holds only its own folders (remove it, or name another store)");
}
}  // namespace

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw IoError("cannot create the store folder " + root_.string() + ": " + ec.message());
  for (const char* sub : {"blobs", "tmp"}) {
    refuse_link(root_ / sub);
    fs::create_directory(root_ / sub, ec);
    if (ec) throw IoError("cannot create the store folder " + (root_ / sub).string() + ": " + ec.message());
    refuse_link(root_ / sub);
  }
}

fs::path BlobStore::blob_path(const std::string& digest) const {
  return root_ / "blobs" / digest.substr(0, 2) / digest;
}

bool BlobStore::has(const std::string& digest, uint64_t size) const {
  struct stat st {};
  return ::lstat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == size;
}

bool BlobStore::intact(const std::string& digest, uint64_t size) const {
  if (!has(digest, size)) return false;
  try {
    Blob b(blob_path(digest), size, "blob");
    return blake2b256_hex(b.bytes()) == digest;
  } catch (const Error&) {
    return false;
  }
}

namespace {
// The temporary's own bytes, re-read, must be the digest's: the digest was taken from a
// mapping of the source, which another process may have changed before (or while) it was
// copied. Refused rather than stored under a digest its bytes do not have.
void check_written(const fs::path& tmp, const std::string& digest, uint64_t size) {
  std::string actual;
  try {
    Blob b(tmp, size, "the blob being written");
    actual = blake2b256_hex(b.bytes());
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (actual != digest) {
    ::unlink(tmp.c_str());
    throw IntegrityError("the bytes of a tensor changed while they were stored (they hashed to " + digest.substr(0, 16) +
                         "..., what was written hashes to " + actual.substr(0, 16) +
                         "...): was the checkpoint being rewritten? Nothing was registered");
  }
}
}  // namespace

uint64_t BlobStore::put(const std::string& digest, std::span<const std::byte> bytes) {
  // An existing blob is trusted only once its bytes are re-hashed: a damaged one would make
  // every later version naming it unreadable.
  if (intact(digest, bytes.size())) return 0;
  const fs::path final_path = blob_path(digest);
  std::error_code ec;
  refuse_link(final_path.parent_path());
  fs::create_directory(final_path.parent_path(), ec);
  if (ec) throw IoError("cannot create " + final_path.parent_path().string() + ": " + ec.message());
  refuse_link(final_path.parent_path());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path tmp = root_ / "tmp" / (digest.substr(0, 16) + "." + std::to_string(::getpid()) + "." + std::to_string(rng()));
  {
    Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (f.fd < 0) throw IoError("cannot create " + tmp.string() + ": " + errno_text());
    try {
      write_all(f.fd, bytes, tmp);
      ::sync_file_range(f.fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // see put_from_file
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
    if (::close(f.fd) != 0) {
      f.fd = -1;
      ::unlink(tmp.c_str());
      throw IoError("cannot write " + tmp.string() + ": " + errno_text());
    }
    f.fd = -1;
  }
  check_written(tmp, digest, bytes.size());
  // Two registrants storing the same blob at once both rename: either wins, the bytes are equal.
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw IoError("cannot move a blob into place at " + final_path.string() + ": " + why);
  }
  return bytes.size();
}

uint64_t BlobStore::put_from_file(const std::string& digest, int fd, uint64_t offset, uint64_t length) {
  if (intact(digest, length)) return 0;
  const fs::path final_path = blob_path(digest);
  std::error_code ec;
  refuse_link(final_path.parent_path());
  fs::create_directory(final_path.parent_path(), ec);
  if (ec) throw IoError("cannot create " + final_path.parent_path().string() + ": " + ec.message());
  refuse_link(final_path.parent_path());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const fs::path tmp = root_ / "tmp" / (digest.substr(0, 16) + "." + std::to_string(::getpid()) + "." + std::to_string(rng()));
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (out.fd < 0) throw IoError("cannot create " + tmp.string() + ": " + errno_text());
  auto fail = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    throw IoError("cannot copy into " + tmp.string() + ": " + why);
  };
  loff_t in_off = static_cast<loff_t>(offset);
  uint64_t left = length;
  while (left > 0) {
    const ssize_t n = ::copy_file_range(fd, &in_off, out.fd, nullptr, std::min<uint64_t>(left, 1ull << 30), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno_text());
    if (n == 0) fail("the source file ended early");
    left -= static_cast<uint64_t>(n);
  }
  // Start writing back now, so that the syncfs at the end of the registration finds little
  // left to wait for (as ckpt's own saves do: core/src/early_writeback.cpp).
  ::sync_file_range(out.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  if (::close(out.fd) != 0) {
    out.fd = -1;
    fail(errno_text());
  }
  out.fd = -1;
  check_written(tmp, digest, length);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw IoError("cannot move a blob into place at " + final_path.string() + ": " + why);
  }
  return length;
}

FileMappings::FileMappings() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[8] = {};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %x:%x %lu %n", &start, &end, perms, &offset, &major, &minor, &inode,
                    &consumed) < 7 ||
        inode == 0)
      continue;
    std::string path = line.substr(static_cast<size_t>(consumed));
    if (path.empty() || path[0] != '/' || path.ends_with(" (deleted)")) continue;
    maps_.push_back({start, end, offset, makedev(major, minor), static_cast<ino_t>(inode), std::move(path), -2});
  }
}

FileMappings::~FileMappings() {
  for (auto& m : maps_)
    if (m.fd >= 0) ::close(m.fd);
}

std::optional<FileMappings::Source> FileMappings::find(std::span<const std::byte> bytes) {
  const auto p = reinterpret_cast<uintptr_t>(bytes.data());
  for (auto& m : maps_) {
    if (p < m.start || p + bytes.size() > m.end) continue;
    if (m.fd == -2) {
      m.fd = ::open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st {};
      // The path may name another file by now: only the mapped one will do.
      if (m.fd >= 0 && (::fstat(m.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != m.dev || st.st_ino != m.inode)) {
        ::close(m.fd);
        m.fd = -1;
      }
    }
    if (m.fd < 0) return std::nullopt;
    return Source{m.fd, m.offset + (p - m.start)};
  }
  return std::nullopt;
}

void BlobStore::sync() const {
  Fd f(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (f.fd < 0 || ::syncfs(f.fd) != 0) throw IoError("cannot sync the store " + root_.string() + ": " + errno_text());
}

std::unique_ptr<Blob> BlobStore::get(const std::string& digest, uint64_t size, const std::string& what) const {
  if (!is_digest(digest)) throw FormatError(what + ": '" + digest + "' is not a BLAKE2b-256 digest");
  auto blob = std::make_unique<Blob>(blob_path(digest), size, what);
  const std::string actual = blake2b256_hex(blob->bytes());
  if (actual != digest)
    throw IntegrityError(what + ": its blob " + blob_path(digest).string() + " is damaged (its bytes hash to " +
                         actual.substr(0, 16) + "..., not " + digest.substr(0, 16) + "...); nothing was written");
  return blob;
}

std::vector<BlobStore::Entry> BlobStore::list() const {
  std::vector<Entry> out;
  std::error_code ec;
  refuse_link(root_ / "blobs");
  for (fs::directory_iterator d(root_ / "blobs", ec), end; !ec && d != end; d.increment(ec)) {
    // Not followed: a link in place of blobs/ab would have gc remove files elsewhere.
    std::error_code sec;
    if (d->symlink_status(sec).type() != fs::file_type::directory) continue;
    const std::string prefix = d->path().filename().string();
    for (fs::directory_iterator f(d->path(), ec), fend; !ec && f != fend; f.increment(ec)) {
      // Only what the store names, in the folder its name puts it in: anything else in the
      // folder is not ours to remove.
      const std::string name = f->path().filename().string();
      if (!is_digest(name) || name.compare(0, 2, prefix) != 0 || prefix.size() != 2) continue;
      if (f->symlink_status(sec).type() != fs::file_type::regular) continue;
      const uint64_t size = f->file_size(sec);
      out.push_back({name, f->path(), sec ? 0 : size});
    }
  }
  if (ec) throw IoError("cannot list the store " + (root_ / "blobs").string() + ": " + ec.message());
  return out;
}

std::vector<fs::path> BlobStore::temporaries() const {
  std::vector<fs::path> out;
  std::error_code ec;
  refuse_link(root_ / "tmp");
  for (fs::directory_iterator f(root_ / "tmp", ec), end; !ec && f != end; f.increment(ec)) out.push_back(f->path());
  return out;
}

namespace {
int open_folder(int at, const std::string& name, const fs::path& shown) {
  const int fd = ::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open the store's folder " + shown.string() + " (a link is not followed): " + errno_text());
  return fd;
}
}  // namespace

void BlobStore::remove_blob(const Entry& e) const {
  Fd blobs(open_folder(AT_FDCWD, (root_ / "blobs").string(), root_ / "blobs"));
  Fd prefix(open_folder(blobs.fd, e.digest.substr(0, 2), root_ / "blobs" / e.digest.substr(0, 2)));
  if (::unlinkat(prefix.fd, e.digest.c_str(), 0) != 0 && errno != ENOENT)
    throw IoError("cannot remove " + e.path.string() + ": " + errno_text());
}

void BlobStore::remove_temporary(const fs::path& p) const {
  Fd tmp(open_folder(AT_FDCWD, (root_ / "tmp").string(), root_ / "tmp"));
  const std::string name = p.filename().string();
  // A folder goes only when empty: nothing is removed recursively.
  if (::unlinkat(tmp.fd, name.c_str(), 0) != 0 && errno == EISDIR) ::unlinkat(tmp.fd, name.c_str(), AT_REMOVEDIR);
}

}  // namespace ckpt::model_registry::detail
