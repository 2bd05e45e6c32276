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

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace ckpt::sdk {

inline std::string os_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

namespace detail {

inline void pread_all(int fd, uint64_t offset, std::span<std::byte> dst, const std::string& path) {
  std::byte* p = dst.data();
  size_t left = dst.size();
  while (left > 0) {
    const ssize_t n = ::pread(fd, p, left, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(CKPT_ERR_IO, os_error("cannot read", path));
    }
    if (n == 0) fail(CKPT_ERR_IO, "'" + path + "' shrank while it was being read");
    p += n;
    left -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

}  // namespace detail

// Copies dst.size() bytes at `offset` of the open file `fd` (`path` in messages) with pread;
// a file that ends first is CKPT_ERR_IO. Compiled into libckpt_sdk_static (ckpt::sdk links it):
// it steers large reads around a distance between source and destination at which some CPUs'
// kernel copy is slow (sdk/src/read_file_at.cpp).
void read_file_at(int fd, uint64_t offset, std::span<std::byte> dst, const std::string& path);

// A regular file opened once and mapped read-only (an empty file maps to an empty span): the
// mapping serves parsing and zero-copy views, read_at() copies out of the file with pread.
//
// Why both: copying a large tensor out of a fresh mapping first has the kernel build page
// tables for every page, which costs more than the copy itself (benchmarks/README.md,
// "Reading out of the page cache"); pread copies straight from the page cache, still one copy.
// The descriptor is the one the mapping came from, so a file renamed over the path in between
// cannot mix two files. Mapping costs nothing until a page is touched, so opening a large file
// reads only the pages a reader looks at.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : path_(path) {
    // Non-blocking, so that a FIFO or a device is refused (map() checks) rather than waited on.
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd_ < 0) fail(errno == ENOENT ? CKPT_ERR_NOT_FOUND : CKPT_ERR_IO, os_error("cannot open", path));
    map();
  }
  // Takes an open descriptor (closed by the destructor, also when this throws).
  MappedFile(int fd, std::string path) : path_(std::move(path)), fd_(fd) { map(); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    ::close(fd_);
  }
  // Tells the kernel the whole file will be read front to back.
  void advise_sequential() const {
    if (data_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_SEQUENTIAL | MADV_WILLNEED);
  }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Copies dst.size() bytes from `offset`, which the caller has checked lie in the file, with
  // read_file_at (above).
  void read_at(uint64_t offset, std::span<std::byte> dst) const { read_file_at(fd_, offset, dst, path_); }

 private:
  void map() {
    auto give_up = [&](const std::string& why) {
      const int e = errno;
      ::close(fd_);
      errno = e;
      fail(CKPT_ERR_IO, why);
    };
    struct stat st {};
    if (::fstat(fd_, &st) != 0) give_up(os_error("cannot stat", path_));
    if (!S_ISREG(st.st_mode)) give_up("'" + path_ + "' is not a regular file");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) give_up(os_error("cannot map", path_));
      data_ = static_cast<const std::byte*>(p);
    }
  }

  std::string path_;
  int fd_ = -1;
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
