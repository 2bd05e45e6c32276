// A file a reader works on, opened once: mapped read-only (for the scan and zero-copy views)
// and read with pread for copies, which goes straight from the page cache instead of first
// faulting in the mapping's page tables (about 3x faster for large tensors, see
// plugins/msgpack/input_file.hpp). Used for the model and for its external data files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ckpt_onnx {

class InputFile {
 public:
  // Opens `path` (a regular file).
  explicit InputFile(const std::string& path);
  // Takes an open descriptor (closed by the destructor, also when this throws).
  InputFile(int fd, std::string path);
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Copies dst.size() bytes from `offset`, which the caller has checked lie in the file.
  void read_at(uint64_t offset, std::span<std::byte> dst) const;

 private:
  void map();
  int fd_ = -1;
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ckpt_onnx
