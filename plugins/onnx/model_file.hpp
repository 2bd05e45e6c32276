// The .onnx file being written: buffered sequential writes (large ones straight from the
// caller's buffer), and one patch after the fact, for the graph's length.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace ckpt_onnx {

class ModelFile {
 public:
  explicit ModelFile(const std::string& path, size_t buffer = size_t{1} << 20) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot create", path));
    buf_.reserve(buffer);
  }
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;
  ~ModelFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  void write(const void* p, size_t n) {
    if (buf_.size() + n > buf_.capacity()) flush();
    if (n >= buf_.capacity())
      raw_write(p, n);
    else
      buf_.insert(buf_.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
    offset_ += n;
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  uint64_t offset() const { return offset_; }

  // Overwrites bytes already written at `at`.
  void patch(uint64_t at, std::string_view bytes) {
    flush();
    if (::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(at)) != static_cast<ssize_t>(bytes.size()))
      ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot write", path_));
  }

  void close() {
    flush();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot close", path_));
  }

 private:
  void flush() {
    if (!buf_.empty()) raw_write(buf_.data(), buf_.size());
    buf_.clear();
  }
  void raw_write(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t w = ::write(fd_, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot write", path_));
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

}  // namespace ckpt_onnx
