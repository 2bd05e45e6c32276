// Reading the zip container of torch.save files, through zlib's minizip: a memory-backed
// minizip stream over the reader's one mapping of the file, so the entries it lists are the
// bytes the reader later views (minizip reports each entry's data offset, which mapping
// needs). Writing is zip_writer.hpp.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace ckpt_pytorch {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // of the (compressed) data in the file
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint32_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc = 0;
};

class ZipReader {
 public:
  // Lists the central directory of `file` (the whole file's bytes); fails with
  // CKPT_ERR_FORMAT when it is not a zip or an entry lies outside the file.
  ZipReader(std::span<const std::byte> file, const std::string& path);
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // The entry's bytes: a view into the file when stored, else inflated into `scratch`. The
  // CRC is checked when `check_crc` (tensor data skips it, as torch's reader does: the
  // checkpoint's own hashes cover it). For records, not storages: a deflated entry may inflate
  // to at most kMaxInflatedRecord bytes or 16 times its compressed size, whichever is more.
  std::span<const std::byte> contents(const ZipEntry& e, std::vector<std::byte>& scratch, bool check_crc) const;
  // Bytes [offset, offset + dst.size()) of a deflated entry's contents, into dst. The whole
  // stream is inflated and checked (exactly its declared size, then its CRC), but only a small
  // window of it is held at a time: reading a tensor of a deflated storage costs the tensor's
  // bytes, not twice them.
  void inflate_range(const ZipEntry& e, uint64_t offset, std::span<std::byte> dst) const;

 private:
  std::span<const std::byte> file_;
  std::string path_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;  // the first entry of each name
};

inline constexpr uint64_t kMaxInflatedRecord = uint64_t{64} << 20;

}  // namespace ckpt_pytorch
