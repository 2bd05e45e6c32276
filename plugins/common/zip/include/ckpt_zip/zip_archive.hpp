// Reading a zip container (torch.save files, NumPy's .npz), through zlib's minizip: a
// memory-backed minizip stream over the reader's one mapping of the file, so the entries it
// lists are the bytes the reader later views (minizip reports each entry's data offset, which
// mapping needs). Writing is zip_writer.hpp. Shared by plugins/pytorch and plugins/numpy
// (README.md beside this folder).
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ckpt_zip {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // of the (compressed) data in the file
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint32_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc = 0;
  uint32_t flags = 0;  // general purpose flags: bit 11 (0x800) says the name is UTF-8
};

// What a format asks of an archive's names beyond one reading (zip_layout.hpp). The defaults
// are torch's: every entry inside one top-level folder, and names compared ignoring case
// (torch's reader, miniz, looks them up so).
struct ZipRules {
  bool one_folder = true;
  bool fold_case = true;
  // An archive of no entries (the end record alone, as Python's zipfile writes np.savez of
  // nothing) is an empty listing; minizip cannot open it (it takes a central directory at
  // offset 0 for none found).
  bool allow_empty = false;
  // Names as Python's zipfile reads them (NumPy's .npz): UTF-8 when the entry's general purpose
  // bit 11 is set (and then it must be valid UTF-8), else code page 437, decoded here to UTF-8
  // so that the name is the key numpy.load gives. Off (torch's rules), a name is its raw bytes,
  // as torch's miniz compares them.
  bool python_names = false;
};

class ZipReader {
 public:
  // Lists the central directory of `file` (the whole file's bytes); fails with
  // CKPT_ERR_FORMAT when it is not a zip or an entry lies outside the file.
  ZipReader(std::span<const std::byte> file, const std::string& path, ZipRules rules = ZipRules{});
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
  // The first dst.size() bytes (at most the entry's size) of a deflated entry, inflating only
  // as much of the stream as they need: nothing past them is read, so the CRC is not checked
  // (inflate_range checks it when the rest is read). For a header at the start of an entry.
  void inflate_head(const ZipEntry& e, std::span<std::byte> dst) const;
  // Checks a stored entry's bytes against its CRC-32 (deflated entries are checked as
  // inflate_range inflates them): CKPT_ERR_INTEGRITY naming the entry on a mismatch.
  void check_stored_crc(const ZipEntry& e) const;

 private:
  std::span<const std::byte> file_;
  std::string path_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;  // the first entry of each name
};

inline constexpr uint64_t kMaxInflatedRecord = uint64_t{64} << 20;

// Whether `s` is UTF-8 as Python decodes it strictly (no overlong forms, surrogates or code
// points past U+10FFFF).
bool valid_utf8(std::string_view s);
// `s` for a message: itself when valid UTF-8, else with every byte from 0x80 up as \xNN.
std::string printable_name(std::string_view s);

}  // namespace ckpt_zip
