// The zip container torch.save writes (and NumPy's np.savez), written by hand: stored entries
// (torch never compresses tensor data; deflated ones for np.savez_compressed's layout), each entry's data aligned to 64 bytes by an "FB" padding field as torch's own
// writer aligns it (so a reader can map a storage in place), ZIP64 records when a size, an
// offset or the entry count outgrows the classic fields. Reading stays on minizip.
//
// Why not a library: minizip copies every stored byte into a 64 KiB buffer one at a time and
// seeks back to patch each local header; libzip writes the archive only at zip_close, so every
// entry's bytes would have to stay alive until then, which a streamed convert (one tensor
// buffer at a time) cannot give (benchmarks/README.md, "pytorch save"). Here an entry's CRC
// (libdeflate's, with the CPU's carry-less multiply) is known before its header is written, and
// its data goes to the file straight from the caller's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_zip {

// Data starts at multiples of this in files we write; torch writes the same.
inline constexpr uint64_t kAlignment = 64;

class ZipWriter {
 public:
  // `always_zip64`: ZIP64 fields for every entry and the end records even where the classic
  // ones would do (the writer option zip64=always; lets tests check readers on small files).
  // `utf8_flag`: a name that is not ASCII gets general purpose flag bit 11 (UTF-8), as Python's
  // zipfile writes it, so Python reads it as UTF-8 and not as code page 437; a name that is not
  // valid UTF-8 is then refused (CKPT_ERR_UNSUPPORTED naming it).
  explicit ZipWriter(const std::string& path, bool always_zip64 = false, bool utf8_flag = false);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  // One stored entry, written now, its data 64-byte aligned. Returns the data's offset.
  uint64_t add(const std::string& name, std::span<const std::byte> data);
  // One stored entry whose data is the parts one after another (a header, then a tensor's
  // bytes straight from the caller's memory).
  uint64_t add(const std::string& name, std::span<const std::span<const std::byte>> parts);
  // One deflated entry: `compressed` is a raw deflate stream of `size` bytes whose CRC-32 is
  // `crc`. Returns the compressed data's offset (also 64-byte aligned).
  uint64_t add_deflated(const std::string& name, std::span<const std::byte> compressed, uint64_t size, uint32_t crc);
  // Bytes already added, read back from the file (`offset` as add returned it).
  void read_back(uint64_t offset, std::span<std::byte> dst);
  // Writes the central directory and closes the file.
  void close();

 private:
  struct Entry {
    std::string name;
    uint64_t offset;  // of its local header
    uint64_t size;
    uint32_t crc;
    uint64_t csize;  // bytes in the file: size when stored
    uint16_t method;  // 0 stored, 8 deflated
    uint16_t flags;
  };
  uint64_t add_entry(const std::string& name, uint16_t method, std::span<const std::span<const std::byte>> parts,
                     uint64_t size, uint32_t crc);
  void append(std::span<const std::byte> bytes);
  void flush();
  void write_all(std::span<const std::byte> bytes);

  std::string path_;
  int fd_ = -1;
  bool always_zip64_;
  bool utf8_flag_;
  uint64_t offset_ = 0;         // bytes in the file, buffered ones included
  std::vector<std::byte> buf_;  // small writes, gathered
  std::vector<Entry> entries_;
};

}  // namespace ckpt_zip
