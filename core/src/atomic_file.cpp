#include "atomic_file.hpp"

#include <ckpt/errors.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
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

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open '" + p.string() + "' to sync it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) throw IoError("cannot sync '" + p.string() + "': " + std::strerror(e));
}
}  // namespace

AtomicFile::AtomicFile(const fs::path& target) : target_(target) {
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IoError("cannot write '" + target.string() + "': folder '" + dir.string() + "' does not exist");
  temp_ = dir / ("." + target.filename().string() + kTempMarker + random_suffix());
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::commit(bool durable) {
  if (durable) fsync_path(temp_, false);
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    throw IoError("cannot rename '" + temp_.string() + "' to '" + target_.string() + "': " + std::strerror(errno));
  committed_ = true;
  if (durable) {
    fs::path dir = target_.parent_path();
    fsync_path(dir.empty() ? fs::path(".") : dir, true);
  }
}

bool is_temp_name(const std::string& filename) {
  return !filename.empty() && filename[0] == '.' && filename.find(kTempMarker) != std::string::npos;
}

}  // namespace ckpt::detail
