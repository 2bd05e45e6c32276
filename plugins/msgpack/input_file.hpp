// The file a reader works on, opened once: mapped read-only for parsing and zero-copy views,
// and read with pread for copies out of it.
//
// Why not sdk::MappedFile: copying a large tensor out of a fresh mapping first has the kernel
// build page tables for every page, which dominates the copy (on the development machine,
// 256 MiB: memcpy from the mapping 4.7 GB/s, pread 14 GB/s). pread copies straight from the
// page cache, still one copy. The descriptor must be the one the mapping came from, so a file
// renamed over the path between two opens cannot mix two files.
#pragma once

#include <ckpt/sdk_io.hpp>

#include <cstddef>
#include <span>
#include <string>

namespace ckpt_msgpack {

class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    using ckpt::sdk::fail;
    using ckpt::sdk::os_error;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      fail(errno == ENOENT ? CKPT_ERR_NOT_FOUND : CKPT_ERR_IO, os_error("cannot open", path));
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
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    ::close(fd_);
  }

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Copies dst.size() bytes from `offset`, which the caller has checked lie in the file.
  void read_at(uint64_t offset, std::span<std::byte> dst) const {
    std::byte* p = dst.data();
    size_t left = dst.size();
    while (left > 0) {
      const ssize_t n = ::pread(fd_, p, left, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot read", path_));
      }
      if (n == 0)
        ckpt::sdk::fail(CKPT_ERR_IO, "'" + path_ + "' shrank while it was being read");
      p += n;
      left -= static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ckpt_msgpack
