// The file a reader works on, opened once: mapped read-only for parsing and zero-copy views,
// and read with pread for copies out of it.
//
// Why not only sdk::MappedFile: copying a large tensor out of a fresh mapping first has the
// kernel build page tables for every page, which costs more than the copy itself; pread copies
// straight from the page cache, still one copy (the msgpack plugin measured 4.7 GB/s against
// 14 GB/s). The descriptor is the one the mapping came from, so a file renamed over the path in
// between cannot mix two files.
#pragma once

#include <ckpt/sdk_io.hpp>

#include <cstddef>
#include <span>
#include <string>

namespace ckpt_pickle {

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

}  // namespace ckpt_pickle
