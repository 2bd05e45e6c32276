// The file a writer fills: appends at a cursor through a buffer (large pieces go straight to
// the file), positioned writes for the header, and opening a gap before the data when the
// header turns out larger than the room reserved for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_safetensors {

class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  void append(std::span<const std::byte> bytes);
  // Flushes, then appends continue at `offset`.
  void seek(uint64_t offset);
  uint64_t cursor() const { return cursor_ + buffer_.size(); }
  void write_at(uint64_t offset, std::span<const std::byte> bytes);
  // Reads back dst.size() bytes written at `offset` (flushing first).
  void read_at(uint64_t offset, std::span<std::byte> dst);
  // Moves every byte from `from` to the end of the file `by` bytes further, leaving
  // [from, from + by) to be overwritten. When both are multiples of the block size and the
  // file system can (ext4, XFS), the kernel inserts the blocks without copying anything;
  // otherwise the bytes are copied. The result is the same either way.
  void open_gap(uint64_t from, uint64_t by);
  void flush();
  void close();
  const std::string& path() const { return path_; }

 private:
  void pwrite_all(uint64_t offset, const std::byte* p, size_t n);

  std::string path_;
  int fd_ = -1;
  uint64_t cursor_ = 0;  // file offset of buffer_[0]
  std::vector<std::byte> buffer_;
};

}  // namespace ckpt_safetensors
