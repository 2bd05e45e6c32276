// Checks of a file's bytes made before libhdf5 parses them, where libhdf5 1.10 trusts what it
// reads: the superblock's end of file, and the global heap collections that hold
// variable-length strings (a damaged one makes libhdf5 loop forever or copy past a buffer).
#pragma once

#include "h5_common.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ckpt_hdf5 {

struct Superblock {
  uint64_t offset = 0;  // where the signature is (0, or after a user block)
  uint64_t base = 0;    // what file addresses are relative to
  unsigned sizeof_addr = 8;
  unsigned sizeof_size = 8;
};

// Finds the superblock and checks its end-of-file address against the file's size, so a
// truncated file is reported as such.
Superblock check_superblock(const std::string& path, uint64_t file_size);

// What the variable-length elements of one attribute may read beyond twice the file's size.
inline constexpr uint64_t kMaxVlenBytes = uint64_t{64} << 20;

class FileGuard {
 public:
  FileGuard(const std::string& path, uint64_t file_size);
  FileGuard(const FileGuard&) = delete;
  FileGuard& operator=(const FileGuard&) = delete;
  ~FileGuard();

  uint64_t file_size() const { return file_size_; }

  // Before H5Aread of `attr`, a variable-length attribute of `count` elements of one-byte
  // units (strings, uint8 sequences): reads the elements' heap references as stored and checks
  // every collection they point into, and that each object is exactly as long as its reference
  // says. Throws a FormatError naming `where` on damage.
  void check_vlen_attribute(hid_t attr, size_t count, const std::string& where);

 private:
  // Object sizes by index of the collection at `addr`, parsed and bounds-checked once.
  const std::map<uint32_t, uint64_t>& collection(uint64_t addr, const std::string& where);

  std::string path_;
  uint64_t file_size_;
  Superblock sb_;
  int fd_ = -1;
  std::map<uint64_t, std::map<uint32_t, uint64_t>> collections_;
};

}  // namespace ckpt_hdf5
