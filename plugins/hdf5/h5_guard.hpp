// Checks of a file's bytes made before libhdf5 parses them, where libhdf5 1.10 trusts what it
// reads: the superblock's end of file, and the global heap collections that hold
// variable-length strings (a damaged one makes libhdf5 loop forever or copy past a buffer).
// h5_workarounds.hpp says which libhdf5 versions each check is compiled for.
#pragma once

#include "h5_common.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ckpt_hdf5 {

struct Superblock {
  uint64_t offset = 0;  // where the signature is (0, or after a user block)
  uint64_t base = 0;    // what file addresses are relative to
  unsigned sizeof_addr = 8;
  unsigned sizeof_size = 8;
};

// Finds the superblock in the open file `fd` and checks its end-of-file address against the
// file's size, so a truncated file is reported as such.
Superblock check_superblock(int fd, const std::string& path, uint64_t file_size);

// The n-byte little-endian number at p (HDF5 stores every address and length so).
inline uint64_t little_endian(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned k = 0; k < n; ++k) v |= uint64_t(p[k]) << (8 * k);
  return v;
}

// What the variable-length elements of a file's attributes and datasets may read together,
// beyond twice the file's size.
inline constexpr uint64_t kMaxVlenBytes = uint64_t{64} << 20;

class FileGuard {
 public:
  // Opens `path` (a regular file, or an error) once: the guard's checks and libhdf5
  // (h5_read_driver.hpp) read through this descriptor.
  explicit FileGuard(const std::string& path);
  FileGuard(const FileGuard&) = delete;
  FileGuard& operator=(const FileGuard&) = delete;
  ~FileGuard();

  uint64_t file_size() const { return file_size_; }
  int fd() const { return fd_; }

  // Before H5Aread or H5Dread of `source`, variable-length data of `count` elements of one-byte
  // units (strings, uint8 sequences): reads the elements' heap references as stored and checks
  // every collection they point into, and that each object is exactly as long as its reference
  // says. Throws a FormatError naming `where` on damage. What all sources of the file read
  // together is bounded (kMaxVlenBytes beyond twice the file), attributes and datasets alike:
  // each is read once, at listing (a tensor's dtype marker is kept from then, not read again).
  void check_vlen(const ValueSource& source, size_t count, const std::string& where);

  // Before libhdf5 parses the global heap collection at file offset `offset` (the read driver
  // calls this for every collection libhdf5 reads, whatever asked for it: a variable-length
  // value, a virtual dataset's mapping, a region reference): its header, size and the walk over
  // its objects, which libhdf5 1.10 loops on forever when an object has size 0.
  void check_collection_at(uint64_t offset);

  // Before libhdf5 parses the object header chunk it just read at file offset `offset` (the
  // read driver calls this for every object header read): the chunk's continuation messages
  // must point at chunks inside the file's first `eoa` bytes, and its link messages must hold
  // the fields they announce. libhdf5 1.10 allocates a
  // continuation chunk by the length its message gives before it reads it, so a 2 KB file
  // could make it allocate 4 GB. A read that starts an object header (its prefix) has its whole
  // first chunk checked, also where libhdf5 read only part of it so far.
  void check_object_header_read(uint64_t offset, const uint8_t* bytes, size_t size, uint64_t eoa);

 private:
  // Object sizes by index of the collection at `addr`, parsed and bounds-checked once.
  const std::map<uint32_t, uint64_t>& collection(uint64_t addr, const std::string& where);

  static int open_input(const std::string& path, uint64_t* size);

  std::string path_;
  uint64_t file_size_ = 0;
  int fd_ = -1;
  Superblock sb_;
  std::map<uint64_t, std::map<uint32_t, uint64_t>> collections_;
  uint64_t vlen_bytes_ = 0;  // what check_vlen allowed all attributes and datasets so far
  // Continuation chunks announced by a checked message, by file offset: a version 1 chunk has
  // no signature and a version 2 chunk does not repeat its header's flags, so both are read as
  // their message said.
  struct Continuation {
    uint64_t length;
    int version;
    bool creation_order;
  };
  std::map<uint64_t, Continuation> continuations_;
  // Where reads of chunks already checked whole start: each chunk's own start (libhdf5 reads a
  // header again after evicting it), and where the rest of a first chunk starts when libhdf5
  // read only its first bytes (512) at first. Any other read is checked as what it is.
  std::set<uint64_t> checked_;
  void read_bytes(void* buf, size_t n, uint64_t at) const;
  void check_link_message(uint64_t chunk_at, const uint8_t* p, uint64_t size) const;
  void check_layout_message(uint64_t chunk_at, const uint8_t* p, uint64_t size) const;
  void check_attribute_message(uint64_t chunk_at, const uint8_t* p, uint64_t size) const;
  // An old-style group's local heap, B-tree and symbol table nodes, and an external file list's
  // names (h5_guard_groups.cpp).
  void check_symbol_table(uint64_t chunk_at, uint64_t btree, uint64_t heap, uint64_t eoa);
  void check_external_file_list(uint64_t chunk_at, const uint8_t* p, uint64_t size, uint64_t eoa) const;
  // The names of the local heap at file address `heap`; fails naming `where`.
  std::vector<uint8_t> local_heap(const std::string& where, uint64_t heap, uint64_t eoa) const;
  static void check_heap_name(const std::vector<uint8_t>& names, uint64_t offset, const std::string& what, bool empty_ok);
  bool inside(uint64_t addr, uint64_t n, uint64_t eoa) const;  // n bytes at file address addr
  std::set<uint64_t> symbol_tables_;  // B-tree addresses already checked
  void check_messages(uint64_t chunk_at, const uint8_t* p, size_t n, int version, bool creation_order, uint64_t eoa);
};

}  // namespace ckpt_hdf5
