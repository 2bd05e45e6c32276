#include "atomic_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::detail {

namespace {
std::string random_suffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(::getpid()));
  static const char* hex = "0123456789abcdef";
  std::string s;
  uint64_t x = rng();
  for (int i = 0; i < 12; ++i, x >>= 4) s += hex[x & 15];
  return s;
}
}  // namespace

std::string random_name_suffix() { return random_suffix(); }

void fsync_dir(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open '" + p.string() + "' to sync it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) throw IoError("cannot sync '" + p.string() + "': " + std::strerror(e));
}

// Whole-file OFD lock on `fd`: 0 when taken, else the errno (EAGAIN: someone holds one).
int ofd_lock(int fd, short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
  return errno == EACCES ? EAGAIN : errno;
}

bool same_file(int fd, const fs::path& p) {
  struct stat a {}, b {};
  return ::fstat(fd, &a) == 0 && ::lstat(p.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void check_save_target(const fs::path& target) {
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0) return;  // nothing there yet
  const char* what = nullptr;
  if (S_ISLNK(st.st_mode)) {
    // The rename replaces the link itself; still, a link to a device is not a checkpoint.
    if (::stat(target.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;
    what = "a symbolic link to something that is not a regular file";
  } else if (!S_ISREG(st.st_mode)) {
    what = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
           : S_ISFIFO(st.st_mode)                     ? "a FIFO"
           : S_ISDIR(st.st_mode)                      ? "a folder"
           : S_ISSOCK(st.st_mode)                     ? "a socket"
                                                      : "not a regular file";
  }
  if (what)
    throw UsageError("cannot save to '" + target.string() + "': it exists and is " + what +
                     "; a checkpoint replaces only a regular file");
}

AtomicFile::AtomicFile(const fs::path& target) : target_(target) {
  check_save_target(target);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError("cannot write '" + target.string() + "': folder '" + dir.string() + "' does not exist");
  try {
    remove_stale_temporaries(dir);
  } catch (const Error&) {
    // Cleaning up after others is a courtesy; this save does not depend on it.
  }
  // A retry covers the instant between creating the file and locking it, in which a sweep
  // may take the empty file for a dead writer's and remove it.
  for (int attempt = 0;; ++attempt) {
    temp_ = dir / ("." + target.filename().string() + kTempMarker + random_suffix());
    int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST && attempt < 8) continue;
      throw IoError("cannot create '" + temp_.string() + "': " + std::strerror(errno));
    }
    int rc = ofd_lock(fd, F_WRLCK);
    // ENOLCK, EINVAL: a file system without locks; the save works, gc falls back on age.
    if ((rc == 0 || rc != EAGAIN) && same_file(fd, temp_)) {
      lock_fd_ = fd;
      return;
    }
    ::close(fd);
    if (attempt >= 8) throw IoError("cannot create and lock a temporary beside '" + target.string() + "'");
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void AtomicFile::commit(bool durable) {
  if (durable && ::fsync(lock_fd_) != 0)
    throw IoError("cannot sync '" + temp_.string() + "': " + std::strerror(errno));
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw IoError("cannot rename '" + temp_.string() + "' to '" + target_.string() + "': " + std::strerror(errno));
  committed_ = true;
  ::close(lock_fd_);
  lock_fd_ = -1;
  if (durable) {
    fs::path dir = target_.parent_path();
    fsync_dir(dir.empty() ? fs::path(".") : dir);
  }
}

bool is_temp_name(const std::string& filename) {
  return !filename.empty() && filename[0] == '.' && filename.find(kTempMarker) != std::string::npos;
}

}  // namespace ckpt::detail

namespace ckpt {

namespace {

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

TemporaryFile inspect_staging(const fs::path& p, const GcOptions& options) {
  using State = TemporaryFile::State;
  TemporaryFile t;
  t.path = p;
  t.bytes = folder_bytes(p);
  const fs::path lock = p / ".lock";
  int fd = ::open(lock.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int rc = fd >= 0 ? detail::ofd_lock(fd, F_RDLCK) : 0;
  struct stat st {};
  const bool dated = ::lstat(p.c_str(), &st) == 0;
  const double age = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
                     (dated ? static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec * 1e-9 : 0.0);
  if (rc == EAGAIN) {
    t.state = State::live;
    t.note = "a live sharded save is writing it";
  } else if (rc != 0 && !options.min_age_seconds) {
    t.note = std::string("locks are not supported here (") + std::strerror(rc) + "); pass a minimum age to remove it";
  } else if (options.min_age_seconds && age < *options.min_age_seconds) {
    t.note = "younger than the minimum age";
  } else {
    t.state = State::stale;
    if (!options.dry_run) {
      std::error_code ec;
      fs::remove_all(p, ec);  // links inside are removed, never followed
      if (ec) t.note = "cannot remove: " + ec.message();
      else t.removed = true;
    }
  }
  if (fd >= 0) ::close(fd);
  return t;
}

// What the lock on one temporary says about its writer.
TemporaryFile inspect(const fs::path& p, const GcOptions& options) {
  using State = TemporaryFile::State;
  TemporaryFile t;
  t.path = p;
  // O_NONBLOCK: a FIFO under a temporary's name must not hang the sweep.
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    t.note = errno == ELOOP ? "a symbolic link, not a temporary of ckpt" : std::strerror(errno);
    return t;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && p.filename().string().ends_with(std::string(detail::kTempMarker) + "shards")) {
    // A sharded save's staging folder: rank 0 holds the lock on its .lock file while the save
    // lasts (ckpt/sharded.hpp).
    ::close(fd);
    return inspect_staging(p, options);
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    t.note = "not a regular file";
    return t;
  }
  t.bytes = static_cast<uint64_t>(st.st_size);
  const double age = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() -
                     (static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec * 1e-9);
  const bool old_enough = !options.min_age_seconds || age >= *options.min_age_seconds;
  int rc = detail::ofd_lock(fd, F_RDLCK);
  if (rc == EAGAIN) {
    t.state = State::live;
    t.note = "a live process is writing it";
  } else if (rc != 0 && !options.min_age_seconds) {
    t.note = std::string("locks are not supported here (") + std::strerror(rc) + "); pass a minimum age to remove it";
  } else if (!old_enough) {
    t.note = "younger than the minimum age";
  } else if (!detail::same_file(fd, p)) {
    t.note = "replaced while being inspected";
  } else {
    t.state = State::stale;
    if (!options.dry_run) {
      // Removed while still locked by us, so no writer can take it up in between.
      if (::unlink(p.c_str()) == 0)
        t.removed = true;
      else
        t.note = std::string("cannot remove: ") + std::strerror(errno);
    }
  }
  ::close(fd);
  return t;
}

}  // namespace

std::vector<TemporaryFile> remove_stale_temporaries(const fs::path& dir, const GcOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError("'" + dir.string() + "' is not a folder");
  std::vector<fs::path> candidates;
  auto consider = [&](const fs::directory_entry& e) {
    if (detail::is_temp_name(e.path().filename().string())) candidates.push_back(e.path());
  };
  if (options.recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      consider(*it);
  } else {
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) consider(*it);
  }
  if (ec) throw IoError("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(candidates.begin(), candidates.end());
  std::vector<TemporaryFile> out;
  for (const auto& p : candidates) out.push_back(inspect(p, options));
  return out;
}

}  // namespace ckpt
