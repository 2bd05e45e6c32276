// Opening a file that another file names (ONNX external data, HDF5 external storage), confined
// to the naming file's folder: ONNX's own loader and libhdf5 both follow such names anywhere,
// and have had path-traversal CVEs for it. The rules, for every format:
//  - the name is relative, holds no NUL and no '..' component;
//  - it resolves from the naming file's folder (not the working directory), symlinks included,
//    to a place inside that folder;
//  - what it names is a regular file: a FIFO, a device, a socket or a folder is refused without
//    being opened for a blocking read.
#pragma once

#include <ckpt/sdk.hpp>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt::sdk {

// Why `location` cannot name a file inside the folder, from its text alone; empty when it may.
inline std::string confined_name_problem(const std::string& location) {
  if (location.empty()) return "it is empty";
  if (location.find('\0') != std::string::npos) return "it holds a NUL byte";
  if (location[0] == '/' || location[0] == '\\') return "it is an absolute path";
  if (location.size() >= 2 && location[1] == ':' && std::isalpha(static_cast<unsigned char>(location[0])))
    return "it is an absolute path (a drive letter)";
  size_t start = 0;
  while (start <= location.size()) {
    size_t end = location.find_first_of("/\\", start);
    if (end == std::string::npos) end = location.size();
    if (location.compare(start, end - start, "..") == 0) return "it climbs out with '..'";
    start = end + 1;
  }
  return {};
}

namespace detail {

// Checks that `fd` is a regular file and makes it blocking again; else closes it.
inline int keep_if_regular(int fd, std::string& problem, int& err) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    err = errno;
    problem = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    err = EINVAL;
    problem = S_ISFIFO(st.st_mode)                      ? "it is a FIFO, not a regular file"
              : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "it is a device, not a regular file"
              : S_ISDIR(st.st_mode)                     ? "it is a folder, not a regular file"
                                                        : "it is not a regular file";
    ::close(fd);
    return -1;
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace detail

// Opens `location` under `folder` by the rules above. Returns a read-only descriptor, or -1
// with `problem` (why, for a message) and `err` (ENOENT when it does not exist).
//
// openat2 with RESOLVE_BENEATH resolves the whole path, symlinks included, and refuses any step
// outside the folder. Where the kernel or a seccomp filter lacks openat2, the same check is
// made on the resolved path, then the file opened without following a final symlink.
inline int open_confined(const std::string& folder, const std::string& location, std::string& problem, int& err) {
  problem = confined_name_problem(location);
  if (!problem.empty()) {
    err = EINVAL;
    return -1;
  }
  const int dir = ::open(folder.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    err = errno;
    problem = std::string("its folder cannot be opened: ") + std::strerror(errno);
    return -1;
  }
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dir, location.c_str(), &how, sizeof how);
  const int e = errno;
  ::close(dir);
  if (fd >= 0) return detail::keep_if_regular(static_cast<int>(fd), problem, err);
  err = e;
  if (e == EXDEV || e == ELOOP) {
    problem = "it resolves (through '..' or a symlink) to a place outside the folder";
    return -1;
  }
  if (e != ENOSYS && e != EPERM) {
    problem = std::strerror(e);
    return -1;
  }
  char real_folder[PATH_MAX], real_file[PATH_MAX];
  const std::string joined = folder + "/" + location;
  if (!::realpath(folder.c_str(), real_folder) || !::realpath(joined.c_str(), real_file)) {
    err = errno;
    problem = std::strerror(errno);
    return -1;
  }
  const std::string f = real_folder, r = real_file;
  if (r.size() <= f.size() || r.compare(0, f.size(), f) != 0 || (f != "/" && r[f.size()] != '/')) {
    err = EXDEV;
    problem = "it resolves (through '..' or a symlink) to '" + r + "', outside the folder";
    return -1;
  }
  const int fd2 = ::open(real_file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
  if (fd2 < 0) {
    err = errno;
    problem = std::strerror(errno);
    return -1;
  }
  return detail::keep_if_regular(fd2, problem, err);
}

// The folder a file lies in, "." for a bare name.
inline std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace ckpt::sdk
