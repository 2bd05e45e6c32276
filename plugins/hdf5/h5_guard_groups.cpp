// FileGuard's checks of the messages whose names live in a local heap: an old-style group's (a
// symbol table message: a version 1 B-tree of symbol table nodes) and a dataset's external
// file list. They run when the object header holding the message is read, before libhdf5
// decodes the message or looks up any of the group's links. Layouts from the HDF5 file format
// specification, sections III.A.1 (version 1 B-trees), III.C (symbol table nodes), III.D
// (local heaps) and IV.A.2.h (the external data files message).
//
// libhdf5 1.10 checks a name's offset against its heap itself, but on that error it leaves the
// heap it was reading in a state from which the file can no longer be closed: the process then
// crashes when libhdf5 shuts down at exit. So every name offset is checked here first.
// Compiled for the libhdf5 versions h5_workarounds.hpp names (CKPT_H5_GUARD_METADATA): 1.10
// and every later one until a release is shown to need none of it.
#include "h5_guard.hpp"
#include "h5_workarounds.hpp"

#if CKPT_H5_GUARD_METADATA

#include <cstring>
#include <vector>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

// A B-tree deeper than this is damage: 2^64 entries fit in far fewer levels.
constexpr int kMaxBtreeLevels = 64;

}  // namespace

std::vector<uint8_t> FileGuard::local_heap(const std::string& where, uint64_t heap, uint64_t eoa) const {
  const unsigned A = sb_.sizeof_addr, L = sb_.sizeof_size;
  auto bad = [&](const std::string& why) { fail(CKPT_ERR_FORMAT, where + "local heap at " + std::to_string(heap) + why); };
  // "HEAP", version 0, 3 reserved bytes, data size, free list offset, data address.
  const uint64_t heap_prefix = 8 + 2 * L + A;
  if (!inside(heap, heap_prefix, eoa)) bad(" lies outside the file");
  std::vector<uint8_t> prefix(heap_prefix);
  read_bytes(prefix.data(), prefix.size(), sb_.base + heap);
  if (std::memcmp(prefix.data(), "HEAP", 4) != 0 || prefix[4] != 0) bad(" has no HEAP signature");
  const uint64_t data_size = little_endian(prefix.data() + 8, L);
  const uint64_t data_addr = little_endian(prefix.data() + 8 + 2 * L, A);
  if (!inside(data_addr, data_size, eoa))
    bad(" says its " + std::to_string(data_size) + " bytes of names lie at " + std::to_string(data_addr) + ", outside the file");
  std::vector<uint8_t> names(data_size);
  read_bytes(names.data(), names.size(), sb_.base + data_addr);
  return names;
}

void FileGuard::check_heap_name(const std::vector<uint8_t>& names, uint64_t offset, const std::string& what, bool empty_ok) {
  if (offset >= names.size() || !std::memchr(names.data() + offset, 0, names.size() - offset))
    fail(CKPT_ERR_FORMAT, what + " names offset " + std::to_string(offset) + " of a local heap of " +
                              std::to_string(names.size()) + " bytes, past its names");
  // libhdf5 refuses an empty file or link name, with the heap still held (the same end).
  if (!empty_ok && names[offset] == 0)
    fail(CKPT_ERR_FORMAT, what + " names offset " + std::to_string(offset) + " of its local heap, an empty name");
}

bool FileGuard::inside(uint64_t addr, uint64_t n, uint64_t eoa) const {
  const uint64_t at = sb_.base + addr;
  return addr <= eoa && at <= eoa && n <= eoa - at;
}

void FileGuard::check_external_file_list(uint64_t chunk_at, const uint8_t* p, uint64_t size, uint64_t eoa) const {
  const unsigned A = sb_.sizeof_addr, L = sb_.sizeof_size;
  const std::string list = "object header chunk at byte " + std::to_string(chunk_at) + ": an external file list";
  const std::string where = list + "'s ";
  // Version 1, 3 reserved bytes, allocated and used slots, the heap's address, then the slots:
  // name offset, offset in that file, size.
  if (size < 8 + A || p[0] != 1) return;  // libhdf5 refuses it before it reads the heap
  const uint64_t allocated = little_endian(p + 4, 2), used = little_endian(p + 6, 2);
  // libhdf5 1.10 only asserts this (not in a release build), then reads `used` slots.
  if (used > allocated)
    fail(CKPT_ERR_FORMAT, list + " uses " + std::to_string(used) + " of its " +
                              std::to_string(allocated) + " slots");
  if (used * (3 * uint64_t{L}) > size - 8 - A)
    fail(CKPT_ERR_FORMAT, list + " of " + std::to_string(size) + " bytes holds fewer than its " +
                              std::to_string(used) + " slots");
  const std::vector<uint8_t> names = local_heap(where, little_endian(p + 8, A), eoa);
  for (uint64_t i = 0; i < used; ++i)
    check_heap_name(names, little_endian(p + 8 + A + i * 3 * L, L), where + "slot " + std::to_string(i), false);
}

void FileGuard::check_symbol_table(uint64_t chunk_at, uint64_t btree, uint64_t heap, uint64_t eoa) {
  if (!symbol_tables_.insert(btree).second) return;
  const unsigned A = sb_.sizeof_addr, L = sb_.sizeof_size;
  const std::string where = "object header chunk at byte " + std::to_string(chunk_at) + ": a group's ";
  auto bad = [&](const std::string& why) { fail(CKPT_ERR_FORMAT, where + why); };
  auto inside = [&](uint64_t addr, uint64_t n) { return this->inside(addr, n, eoa); };
  const std::vector<uint8_t> names = local_heap(where, heap, eoa);
  auto check_name = [&](uint64_t offset, const char* what, bool empty_ok) { check_heap_name(names, offset, where + what, empty_ok); };

  // The B-tree, breadth first: "TREE", type 0 (group nodes), level, entries used, two siblings,
  // then key, child, key, child, ..., key. Keys are name offsets; leaves' children are symbol
  // table nodes.
  std::vector<std::pair<uint64_t, int>> nodes{{btree, -1}};
  std::set<uint64_t> seen;
  const uint64_t node_prefix = 8 + 2 * uint64_t{A};
  while (!nodes.empty()) {
    const auto [addr, parent_level] = nodes.back();
    nodes.pop_back();
    if (!seen.insert(addr).second) bad("B-tree reaches the node at " + std::to_string(addr) + " twice");
    if (!inside(addr, node_prefix)) bad("B-tree node at " + std::to_string(addr) + " lies outside the file");
    std::vector<uint8_t> head(node_prefix);
    read_bytes(head.data(), head.size(), sb_.base + addr);
    if (std::memcmp(head.data(), "TREE", 4) != 0 || head[4] != 0) continue;  // not a group node: libhdf5 refuses it
    const int level = head[5];
    const uint64_t used = little_endian(head.data() + 6, 2);
    if (level >= kMaxBtreeLevels || (parent_level >= 0 && level != parent_level - 1))
      bad("B-tree node at " + std::to_string(addr) + " has level " + std::to_string(level));
    const uint64_t body = used * (L + A) + L;
    if (!inside(addr + node_prefix, body)) bad("B-tree node at " + std::to_string(addr) + " runs past the file");
    std::vector<uint8_t> b(body);
    read_bytes(b.data(), b.size(), sb_.base + addr + node_prefix);
    for (uint64_t i = 0; i <= used; ++i) {
      check_name(little_endian(b.data() + i * (L + A), L), "B-tree key", true);  // the first key is ""
      if (i == used) break;
      const uint64_t child = little_endian(b.data() + i * (L + A) + L, A);
      if (level > 0) {
        nodes.emplace_back(child, level);
        continue;
      }
      // A symbol table node: "SNOD", version 1, reserved, number of symbols, then entries of
      // name offset, object header address, cache type, reserved and 16 bytes of scratch pad.
      if (!seen.insert(child).second) bad("B-tree reaches the symbol table node at " + std::to_string(child) + " twice");
      if (!inside(child, 8)) bad("symbol table node at " + std::to_string(child) + " lies outside the file");
      uint8_t sn[8];
      read_bytes(sn, 8, sb_.base + child);
      if (std::memcmp(sn, "SNOD", 4) != 0) continue;  // libhdf5 refuses it
      const uint64_t symbols = little_endian(sn + 6, 2);
      const uint64_t entry = L + A + 24;
      if (!inside(child + 8, symbols * entry)) bad("symbol table node at " + std::to_string(child) + " runs past the file");
      std::vector<uint8_t> e(symbols * entry);
      read_bytes(e.data(), e.size(), sb_.base + child + 8);
      for (uint64_t s = 0; s < symbols; ++s) check_name(little_endian(e.data() + s * entry, L), "link", false);
    }
  }
}

}  // namespace ckpt_hdf5

#endif  // CKPT_H5_GUARD_METADATA
