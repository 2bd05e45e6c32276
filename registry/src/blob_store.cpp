#include "blob_store.hpp"

#include <ckpt/errors.hpp>

#include <sodium.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
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

Blob::Blob(int folder, const std::string& name, const fs::path& shown, uint64_t expected_size, const std::string& what,
           std::byte* into) {
  Fd f(::openat(folder, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0)
    throw IntegrityError(what + ": its blob " + shown.string() + " cannot be opened: " + errno_text());
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw IntegrityError(what + ": its blob " + shown.string() + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != expected_size)
    throw IntegrityError(what + ": its blob " + shown.string() + " holds " + std::to_string(st.st_size) +
                         " bytes, the tensor needs " + std::to_string(expected_size));
  size_ = static_cast<size_t>(expected_size);
  if (size_ == 0) return;
  // Small blobs are read: a pull keeps every blob until the writer is done, and a mapping each
  // would run into the kernel's limit on mappings (vm.max_map_count, 65530) for a model of
  // 100,000 small tensors.
  if (size_ < kMapThreshold) {
    std::byte* dst = into;
    if (!dst) {
      copy_.resize(size_);
      dst = copy_.data();
    }
    size_t got = 0;
    while (got < size_) {
      const ssize_t n = ::pread(f.fd, dst + got, size_ - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw IoError("cannot read " + shown.string() + ": " + (n < 0 ? errno_text() : std::string("file shrank")));
      got += static_cast<size_t>(n);
    }
    data_ = dst;
    return;
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, f.fd, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw IoError("cannot map " + shown.string() + ": " + errno_text());
  }
  ::madvise(map_, size_, MADV_SEQUENTIAL);
  data_ = static_cast<const std::byte*>(map_);
}

Blob::~Blob() {
  if (map_) ::munmap(map_, size_);
}

namespace {

// Nothing inside the store may be a symbolic link: gc removes what it finds there and
// registrations write there, and through a link either would reach outside the store. Every
// folder below the store's root is opened with O_NOFOLLOW and used through its descriptor
// (openat, renameat, unlinkat), so one swapped for a link after it was opened is not followed.
int open_folder(int at, const std::string& name, const fs::path& shown) {
  const int fd = ::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  if (errno == ELOOP || errno == ENOTDIR)
    throw IoError("the store's " + shown.string() + " is " + (errno == ELOOP ? "a symbolic link" : "not a folder") +
                  "; a store holds only its own folders (remove it, or name another store)");
  throw IoError("cannot open the store's folder " + shown.string() + ": " + errno_text());
}

// mkdirat then open_folder: creating it is not an error when it exists (as anything: the open
// refuses what is not a folder).
int make_folder(int at, const std::string& name, const fs::path& shown, bool create) {
  if (create && ::mkdirat(at, name.c_str(), 0755) != 0 && errno != EEXIST)
    throw IoError("cannot create the store folder " + shown.string() + ": " + errno_text());
  return open_folder(at, name, shown);
}

thread_local std::mt19937_64 tmp_rng{std::random_device{}()};

}  // namespace

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw IoError("cannot create the store folder " + root_.string() + ": " + ec.message());
  // The root is the folder the user named (a link to it is theirs to make); below it, nothing is
  // followed.
  root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0) throw IoError("cannot open the store folder " + root_.string() + ": " + errno_text());
  try {
    blobs_fd_ = make_folder(root_fd_, "blobs", root_ / "blobs", true);
    tmp_fd_ = make_folder(root_fd_, "tmp", root_ / "tmp", true);
  } catch (...) {
    close_all();
    throw;
  }
}

BlobStore::~BlobStore() { close_all(); }

void BlobStore::close_all() noexcept {
  for (int* fd : {&root_fd_, &blobs_fd_, &tmp_fd_})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
}

fs::path BlobStore::blob_path(const std::string& digest) const {
  return root_ / "blobs" / digest.substr(0, 2) / digest;
}

// blobs/ab/ for a digest: -1 when it does not exist and `create` is false.
int BlobStore::prefix_folder(const std::string& digest, bool create) const {
  const std::string prefix = digest.substr(0, 2);
  if (!create) {
    const int fd = ::openat(blobs_fd_, prefix.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno == ENOENT) return fd;
  }
  return make_folder(blobs_fd_, prefix, root_ / "blobs" / prefix, create);
}

bool BlobStore::has(const std::string& digest, uint64_t size) const {
  if (!is_digest(digest)) return false;
  Fd prefix(prefix_folder(digest, false));
  struct stat st {};
  return prefix.fd >= 0 && ::fstatat(prefix.fd, digest.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
         static_cast<uint64_t>(st.st_size) == size;
}

bool BlobStore::intact(const std::string& digest, uint64_t size) const {
  if (!has(digest, size)) return false;
  try {
    Fd prefix(prefix_folder(digest, false));
    if (prefix.fd < 0) return false;
    Blob b(prefix.fd, digest, blob_path(digest), size, "blob");
    return blake2b256_hex(b.bytes()) == digest;
  } catch (const Error&) {
    return false;
  }
}

std::string BlobStore::new_temporary(const std::string& stem) const {
  return stem + "." + std::to_string(::getpid()) + "." + std::to_string(tmp_rng());
}

void BlobStore::drop_temporary(const std::string& name) const noexcept { ::unlinkat(tmp_fd_, name.c_str(), 0); }

int BlobStore::create_temporary(const std::string& name) const {
  const int fd = ::openat(tmp_fd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (fd < 0) throw IoError("cannot create " + (root_ / "tmp" / name).string() + ": " + errno_text());
  return fd;
}

// The temporary's own bytes, re-read, must be the digest's: the digest was taken from a
// mapping of the source, which another process may have changed before (or while) it was
// copied. Refused rather than stored under a digest its bytes do not have.
void BlobStore::check_written(const std::string& tmp, const std::string& digest, uint64_t size) const {
  std::string actual;
  try {
    Blob b(tmp_fd_, tmp, root_ / "tmp" / tmp, size, "the blob being written");
    actual = blake2b256_hex(b.bytes());
  } catch (...) {
    drop_temporary(tmp);
    throw;
  }
  if (actual != digest) {
    drop_temporary(tmp);
    throw IntegrityError("the bytes of a tensor changed while they were stored (they hashed to " + digest.substr(0, 16) +
                         "..., what was written hashes to " + actual.substr(0, 16) +
                         "...): was the checkpoint being rewritten? Nothing was registered");
  }
}

// `length` bytes at `offset` of `fd` into a new temporary, by the kernel (copy_file_range),
// writeback started: removed again on failure.
void BlobStore::copy_into(const std::string& tmp, int fd, uint64_t offset, uint64_t length) const {
  Fd out(create_temporary(tmp));
  auto fail = [&](const std::string& why) {
    drop_temporary(tmp);
    throw IoError("cannot copy into " + (root_ / "tmp" / tmp).string() + ": " + why);
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
}

void BlobStore::install(const std::string& tmp, const std::string& digest) const {
  int prefix_fd = -1;
  try {
    prefix_fd = prefix_folder(digest, true);
  } catch (...) {
    drop_temporary(tmp);
    throw;
  }
  Fd prefix(prefix_fd);
  // Two registrants storing the same blob at once both rename: either wins, the bytes are equal.
  if (::renameat(tmp_fd_, tmp.c_str(), prefix.fd, digest.c_str()) != 0) {
    const std::string why = errno_text();
    drop_temporary(tmp);
    throw IoError("cannot move a blob into place at " + blob_path(digest).string() + ": " + why);
  }
}

uint64_t BlobStore::put(const std::string& digest, std::span<const std::byte> bytes, Source source) {
  // A blob the store holds was re-hashed before it took its name (below); it is not re-hashed
  // again here. Damage after that is found by every pull and by `verify`, which also moves a
  // damaged blob out of the way so that the next registration of those bytes stores them again.
  if (has(digest, bytes.size())) return 0;
  const std::string tmp = new_temporary(digest.substr(0, 16));
  {
    Fd f(create_temporary(tmp));
    try {
      write_all(f.fd, bytes, root_ / "tmp" / tmp);
      ::sync_file_range(f.fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // see copy_into
    } catch (...) {
      drop_temporary(tmp);
      throw;
    }
    if (::close(f.fd) != 0) {
      f.fd = -1;
      drop_temporary(tmp);
      throw IoError("cannot write " + (root_ / "tmp" / tmp).string() + ": " + errno_text());
    }
    f.fd = -1;
  }
  // Bytes in this process's own memory cannot change between the hash and the write; bytes
  // mapped from a file another process can rewrite are re-hashed as written.
  if (source == Source::shared) check_written(tmp, digest, bytes.size());
  install(tmp, digest);
  return bytes.size();
}

uint64_t BlobStore::put_from_file(const std::string& digest, int fd, uint64_t offset, uint64_t length) {
  if (has(digest, length)) return 0;
  const std::string tmp = new_temporary(digest.substr(0, 16));
  copy_into(tmp, fd, offset, length);
  check_written(tmp, digest, length);
  install(tmp, digest);
  return length;
}

BlobStore::Copied BlobStore::copy_from_file(int fd, uint64_t offset, uint64_t length) {
  const std::string tmp = new_temporary("copy");
  copy_into(tmp, fd, offset, length);
  Copied c;
  try {
    Blob b(tmp_fd_, tmp, root_ / "tmp" / tmp, length, "the blob being written");
    c.digest = blake2b256_hex(b.bytes());
  } catch (...) {
    drop_temporary(tmp);
    throw;
  }
  if (has(c.digest, length)) {
    drop_temporary(tmp);
    return c;
  }
  install(tmp, c.digest);
  c.written = length;
  return c;
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
  if (::syncfs(root_fd_) != 0) throw IoError("cannot sync the store " + root_.string() + ": " + errno_text());
}

std::unique_ptr<Blob> BlobStore::get(const std::string& digest, uint64_t size, const std::string& what, std::byte* into) const {
  if (!is_digest(digest)) throw FormatError(what + ": '" + digest + "' is not a BLAKE2b-256 digest");
  Fd prefix(prefix_folder(digest, false));
  if (prefix.fd < 0) throw IntegrityError(what + ": its blob " + blob_path(digest).string() + " is missing");
  auto blob = std::make_unique<Blob>(prefix.fd, digest, blob_path(digest), size, what, into);
  const std::string actual = blake2b256_hex(blob->bytes());
  if (actual != digest)
    throw IntegrityError(what + ": its blob " + blob_path(digest).string() + " is damaged (its bytes hash to " +
                         actual.substr(0, 16) + "..., not " + digest.substr(0, 16) + "...); nothing was written");
  return blob;
}

namespace {
// The names in a folder opened by descriptor, with their types as lstat sees them (never
// followed).
struct Listed {
  std::string name;
  mode_t mode = 0;
  uint64_t size = 0;
};
std::vector<Listed> list_folder(int folder, const fs::path& shown) {
  const int fd = ::openat(folder, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot list " + shown.string() + ": " + errno_text());
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    throw IoError("cannot list " + shown.string() + ": " + errno_text());
  }
  std::vector<Listed> out;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(folder, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    out.push_back({name, st.st_mode, static_cast<uint64_t>(st.st_size)});
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) throw IoError("cannot list " + shown.string() + ": " + std::strerror(err));
  return out;
}
}  // namespace

std::vector<BlobStore::Entry> BlobStore::list() const {
  std::vector<Entry> out;
  for (const auto& d : list_folder(blobs_fd_, root_ / "blobs")) {
    // Not followed: a link in place of blobs/ab would have gc remove files elsewhere.
    if (!S_ISDIR(d.mode) || d.name.size() != 2) continue;
    Fd prefix(::openat(blobs_fd_, d.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (prefix.fd < 0) continue;  // swapped for something else since it was listed
    for (const auto& f : list_folder(prefix.fd, root_ / "blobs" / d.name)) {
      // Only what the store names, in the folder its name puts it in: anything else in the
      // folder is not ours to remove.
      if (!is_digest(f.name) || f.name.compare(0, 2, d.name) != 0 || !S_ISREG(f.mode)) continue;
      out.push_back({f.name, root_ / "blobs" / d.name / f.name, f.size});
    }
  }
  return out;
}

void BlobStore::publish_once(const std::string& name, const std::string& content) const {
  const std::string tmp = new_temporary("." + name);
  {
    Fd f(create_temporary(tmp));
    try {
      write_all(f.fd, std::as_bytes(std::span(content.data(), content.size())), root_ / "tmp" / tmp);
    } catch (...) {
      drop_temporary(tmp);
      throw;
    }
  }
  const int rc = ::linkat(tmp_fd_, tmp.c_str(), root_fd_, name.c_str(), 0);
  const int err = errno;
  drop_temporary(tmp);
  if (rc != 0 && err != EEXIST) throw IoError("cannot write " + (root_ / name).string() + ": " + std::strerror(err));
}

bool BlobStore::empty() const { return list_folder(blobs_fd_, root_ / "blobs").empty(); }

std::vector<fs::path> BlobStore::temporaries() const {
  std::vector<fs::path> out;
  for (const auto& f : list_folder(tmp_fd_, root_ / "tmp")) out.push_back(root_ / "tmp" / f.name);
  return out;
}

void BlobStore::remove_blob(const Entry& e) const {
  Fd prefix(prefix_folder(e.digest, false));
  if (prefix.fd < 0) return;
  if (::unlinkat(prefix.fd, e.digest.c_str(), 0) != 0 && errno != ENOENT)
    throw IoError("cannot remove " + e.path.string() + ": " + errno_text());
}

void BlobStore::remove_temporary(const fs::path& p) const {
  const std::string name = p.filename().string();
  // A folder goes only when empty: nothing is removed recursively.
  if (::unlinkat(tmp_fd_, name.c_str(), 0) != 0 && errno == EISDIR) ::unlinkat(tmp_fd_, name.c_str(), AT_REMOVEDIR);
}

bool BlobStore::set_aside_if_damaged(const std::string& digest, uint64_t size) const {
  if (!is_digest(digest)) return false;
  Fd prefix(prefix_folder(digest, false));
  struct stat st {};
  if (prefix.fd < 0 || ::fstatat(prefix.fd, digest.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
    return false;
  if (static_cast<uint64_t>(st.st_size) == size && intact(digest, size)) return false;
  const std::string aside = new_temporary("damaged-" + digest.substr(0, 16));
  if (::renameat(prefix.fd, digest.c_str(), tmp_fd_, aside.c_str()) != 0)
    throw IoError("cannot move the damaged blob " + blob_path(digest).string() + " aside: " + errno_text());
  return true;
}

}  // namespace ckpt::model_registry::detail
