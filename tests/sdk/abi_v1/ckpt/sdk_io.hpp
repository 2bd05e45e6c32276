// File helpers for plugins (POSIX): a read-only mapping and a buffered output file, both
// reporting failures as ckpt::sdk::Error with the path and the OS's reason.
#pragma once

#include <ckpt/sdk.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::sdk {

inline std::string os_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

// The whole file mapped read-only. An empty file maps to an empty span.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(errno == ENOENT ? CKPT_ERR_NOT_FOUND : CKPT_ERR_IO, os_error("cannot open", path));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      fail(CKPT_ERR_IO, os_error("cannot stat", path));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd);
        errno = e;
        fail(CKPT_ERR_IO, os_error("cannot map", path));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
  }
  // Tells the kernel the whole file will be read front to back.
  void advise_sequential() const {
    if (data_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_SEQUENTIAL | MADV_WILLNEED);
  }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Buffered sequential writer over a file descriptor. Large writes bypass the buffer.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path, size_t buffer = 1 << 20) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(CKPT_ERR_IO, os_error("cannot create", path));
    buf_.reserve(buffer);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const void* p, size_t n) {
    if (buf_.size() + n <= buf_.capacity()) {
      buf_.insert(buf_.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
    } else {
      flush();
      if (n >= buf_.capacity())
        raw_write(p, n);
      else
        buf_.insert(buf_.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
    }
    offset_ += n;
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  void put(char c) {
    if (buf_.size() == buf_.capacity()) flush();
    buf_.push_back(c);
    ++offset_;
  }
  // msgpack-cxx's packer wants a stream with this signature.
  void write(const char* p, size_t n) { write(static_cast<const void*>(p), n); }
  uint64_t offset() const { return offset_; }
  void flush() {
    if (!buf_.empty()) raw_write(buf_.data(), buf_.size());
    buf_.clear();
  }
  void close() {
    flush();
    if (fd_ >= 0 && ::close(fd_) != 0) {
      fd_ = -1;
      fail(CKPT_ERR_IO, os_error("cannot close", path_));
    }
    fd_ = -1;
  }
  const std::string& path() const { return path_; }

 private:
  void raw_write(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd_, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail(CKPT_ERR_IO, os_error("cannot write", path_));
      }
      c += w;
      n -= static_cast<size_t>(w);
    }
  }
  std::string path_;
  int fd_ = -1;
  std::vector<char> buf_;
  uint64_t offset_ = 0;
};

}  // namespace ckpt::sdk
