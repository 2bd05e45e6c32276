#include "small_file.hpp"

#include <ckpt/errors.hpp>

#include <cerrno>
#include <cstring>
#include <memory>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::detail {

namespace {
const char* kind(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}
}  // namespace

int open_regular_file(const fs::path& path, const char* what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open " + std::string(what) + " '" + path.string() + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw IoError("cannot stat '" + path.string() + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UsageError("'" + path.string() + "' is " + kind(st.st_mode) + ", not a regular file; refusing it as " + what);
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

void read_chunks(const fs::path& path, const char* what, const std::function<bool(std::span<const std::byte>)>& chunk) {
  const int fd = open_regular_file(path, what);
  const size_t kBuf = size_t(1) << 20;
  const std::unique_ptr<std::byte[]> buf(new std::byte[kBuf]);
  for (;;) {
    const ssize_t n = ::read(fd, buf.get(), kBuf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw IoError("cannot read '" + path.string() + "': " + std::strerror(e));
    }
    if (n == 0) break;
    bool more = false;
    try {
      more = chunk({buf.get(), static_cast<size_t>(n)});
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (!more) break;
  }
  ::close(fd);
}

std::string read_small_file(const fs::path& path, size_t max_bytes, const char* what) {
  std::string out;
  bool too_long = false;
  read_chunks(path, what, [&](std::span<const std::byte> b) {
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    too_long = out.size() > max_bytes;
    return !too_long;
  });
  if (too_long)
    throw LimitError("'" + path.string() + "' is longer than " + std::to_string(max_bytes) + " bytes: not a " + what);
  return out;
}

}  // namespace ckpt::detail
