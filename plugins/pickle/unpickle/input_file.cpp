#include "input_file.hpp"

namespace ckpt_pickle {

using ckpt::sdk::fail;
using ckpt::sdk::os_error;

InputFile::InputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(errno == ENOENT ? CKPT_ERR_NOT_FOUND : CKPT_ERR_IO, os_error("cannot open", path));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    errno = e;
    fail(CKPT_ERR_IO, os_error("cannot stat", path));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd_);
      errno = e;
      fail(CKPT_ERR_IO, os_error("cannot map", path));
    }
    data_ = static_cast<const std::byte*>(p);
  }
}

InputFile::~InputFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
  ::close(fd_);
}

void InputFile::read_at(uint64_t offset, std::span<std::byte> dst) const {
  std::byte* p = dst.data();
  size_t left = dst.size();
  while (left > 0) {
    const ssize_t n = ::pread(fd_, p, left, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(CKPT_ERR_IO, os_error("cannot read", path_));
    }
    if (n == 0) fail(CKPT_ERR_IO, "'" + path_ + "' shrank while it was being read");
    p += n;
    left -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

}  // namespace ckpt_pickle
