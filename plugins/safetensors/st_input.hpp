// The file a reader works on, opened once: mapped read-only for the header and zero-copy
// views, and read with pread for copies out of it.
//
// Mapping costs nothing until a page is touched, so opening a 1 GiB file reads only the pages
// of its header. Copies of large tensors use pread rather than memcpy from the mapping: a first
// touch of mapped pages makes the kernel build page tables for every page, which costs more
// than the copy itself (plugins/msgpack measured the same). The descriptor is the one the
// mapping came from, so a file renamed over the path between two opens cannot mix two files.
#pragma once

#include <ckpt/sdk_io.hpp>

#include <cstddef>
#include <span>
#include <string>

namespace ckpt_safetensors {

class InputFile {
 public:
  explicit InputFile(const std::string& path);
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Copies dst.size() bytes from `offset`, which the caller has checked lie in the file.
  void read_at(uint64_t offset, std::span<std::byte> dst) const;

 private:
  std::string path_;
  int fd_ = -1;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ckpt_safetensors
