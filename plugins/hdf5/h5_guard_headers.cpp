// FileGuard's checks of object header chunks, run by the read driver as libhdf5 reads them.
// Layouts from the HDF5 file format specification, section IV.A (object headers, versions 1
// and 2) and IV.A.2.q (the object header continuation message).
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

constexpr unsigned kLink = 0x06, kExternalFiles = 0x07, kLayout = 0x08, kAttribute = 0x0c, kContinuation = 0x10,
                   kSymbolTable = 0x11;

std::string at_text(uint64_t chunk_at) { return "object header chunk at byte " + std::to_string(chunk_at); }

}  // namespace

void FileGuard::check_messages(uint64_t chunk_at, const uint8_t* p, size_t n, int version, bool creation_order,
                               uint64_t eoa) {
  const size_t header = version == 1 ? 8 : 4 + (creation_order ? 2 : 0);
  for (size_t k = 0; n - k >= header;) {
    const unsigned type = version == 1 ? static_cast<unsigned>(little_endian(p + k, 2)) : p[k];
    const uint64_t size = little_endian(p + k + (version == 1 ? 2 : 1), 2);
    const size_t data = k + header;
    if (size > n - data) return;  // libhdf5 rejects a message that overruns its chunk itself
    if (type == kLink) check_link_message(chunk_at, p + data, size);
    if (type == kLayout) check_layout_message(chunk_at, p + data, size);
    if (type == kAttribute) check_attribute_message(chunk_at, p + data, size);
    if (type == kExternalFiles) check_external_file_list(chunk_at, p + data, size, eoa);
    if (type == kSymbolTable && size >= 2 * uint64_t{sb_.sizeof_addr})
      check_symbol_table(chunk_at, little_endian(p + data, sb_.sizeof_addr),
                         little_endian(p + data + sb_.sizeof_addr, sb_.sizeof_addr), eoa);
    // A virtual dataset's layout (version 4, class 3): libhdf5 decodes its mapping (file and
    // dataset names, selections, from the global heap) as it opens the dataset, and 1.10 reads
    // past the heap object on a damaged one. ckpt refuses virtual datasets anyway, so before
    // libhdf5 decodes anything of one.
    if (type == kLayout && size >= 2 && p[data] == 4 && p[data + 1] == 3)
      fail(CKPT_ERR_UNSUPPORTED, at_text(chunk_at) + ": a virtual dataset; ckpt does not read virtual datasets "
                                 "(libhdf5 follows their mappings into other files, and crashes on a mapping of itself)");
    if (type == kContinuation) {
      const unsigned A = sb_.sizeof_addr, L = sb_.sizeof_size;
      if (size < A + L) fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": a continuation message of " + std::to_string(size) + " bytes");
      const uint64_t offset = little_endian(p + data, A), length = little_endian(p + data + A, L);
      const uint64_t start = sb_.base + offset;
      if (offset > eoa || start > eoa || length > eoa - start || length == 0)
        fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": a continuation message points at " + std::to_string(length) +
                                  " bytes at " + std::to_string(offset) + ", outside the file's " +
                                  std::to_string(eoa) + " bytes");
      continuations_[start] = Continuation{length, version, creation_order};
    }
    k = data + size;
  }
}

// A link message (section IV.A.2.g) whose fields run past the message: libhdf5 1.10 reports
// such a message while it builds a group's table of links, and then frees the entries it had
// not filled yet (garbage pointers).
void FileGuard::check_link_message(uint64_t chunk_at, const uint8_t* p, uint64_t size) const {
  auto bad = [&](const std::string& why) {
    fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": a link message of " + std::to_string(size) + " bytes " + why);
  };
  if (size < 2) bad("has no header");
  // Everything libhdf5 refuses while decoding one: any refusal leaves the table half filled.
  if (p[0] != 1) bad("has version " + std::to_string(p[0]));
  const uint8_t flags = p[1];
  if (flags & ~0x1fu) bad("has unknown flags " + std::to_string(flags));
  uint64_t k = 2;
  uint8_t link_type = 0;
  if (flags & 0x08) {
    if (size < k + 1) bad("ends in its link type");
    link_type = p[k++];
    if (link_type > 1 && link_type < 64) bad("has link type " + std::to_string(link_type));
    // User-defined links other than external ones need a class registered in the reading
    // program; ckpt registers none, and libhdf5 1.10 dereferences their data unchecked.
    if (link_type > 64)
      fail(CKPT_ERR_UNSUPPORTED, at_text(chunk_at) + ": a user-defined link (type " + std::to_string(link_type) +
                                     "), which ckpt does not read");
  }
  if (flags & 0x04) k += 8;  // creation order
  if (flags & 0x10) {        // name character set: ASCII or UTF-8
    if (size < k + 1) bad("ends in its character set");
    if (p[k] > 1) bad("has character set " + std::to_string(p[k]));
    k += 1;
  }
  const unsigned width = 1u << (flags & 3);
  if (size < k + width) bad("ends before its name's length");
  const uint64_t name = little_endian(p + k, width);
  k += width;
  if (name == 0 || name > size - k) bad("names " + std::to_string(name) + " bytes, past its end");
  k += name;
  if (link_type == 0) {  // hard: an object address
    if (size - k < sb_.sizeof_addr) bad("ends in its object address");
  } else {  // soft and external: a length and that many bytes
    if (size - k < 2) bad("ends before its value's length");
    const uint64_t value = little_endian(p + k, 2);
    if (value > size - k - 2) bad("holds a value of " + std::to_string(value) + " bytes, past its end");
    if (link_type == 1 && value == 0) bad("is a soft link to an empty path");
    // An external link's value: a version and flags byte, then the file's and the object's
    // NUL-terminated names (libhdf5 1.10 reads the first byte even of an empty value).
    const uint8_t* v = p + k + 2;
    if (link_type == 64 && (value < 3 || v[value - 1] != 0 || !std::memchr(v + 1, 0, value - 2)))
      bad("is an external link whose value of " + std::to_string(value) + " bytes is not a version, a file name and an object name");
  }
}

// A chunked dataset's layout message (section IV.A.2.i) with a chunk dimension of 0: libhdf5
// 1.10 divides the dataset's dimensions by the chunk's as it opens the dataset. Versions 1 and 2
// (version, rank, class, 5 reserved, an address for classes 1 and 2, then rank 4-byte
// dimensions), 3 (version, class, then for chunked: rank, address, rank 4-byte dimensions) and
// 4 (version, class, flags, rank, the dimensions' width in bytes, then the dimensions).
void FileGuard::check_layout_message(uint64_t chunk_at, const uint8_t* p, uint64_t size) const {
  if (size < 2) return;  // libhdf5 refuses it
  const unsigned A = sb_.sizeof_addr;
  uint64_t rank = 0, at = 0, width = 4;
  if (p[0] == 1 || p[0] == 2) {
    if (size < 3 || p[2] != 2) return;
    rank = p[1];
    at = 8 + A;
  } else if (p[0] == 3) {
    if (p[1] != 2 || size < 3) return;
    rank = p[2];
    at = 3 + A;
  } else if (p[0] == 4) {
    if (p[1] != 2 || size < 5) return;
    rank = p[3];
    width = p[4];
    at = 5;
    if (width < 1 || width > 8) fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": a layout message whose chunk dimensions are " + std::to_string(width) + " bytes wide");
  } else {
    return;
  }
  if (at > size || rank * width > size - at) fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": a layout message of " + std::to_string(size) + " bytes ends inside its chunk dimensions");
  for (uint64_t i = 0; i < rank; ++i)
    if (little_endian(p + at + i * width, static_cast<unsigned>(width)) == 0)
      fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": a chunked dataset's layout message gives chunk dimension " +
                                std::to_string(i) + " as 0");
}

// An attribute message (section IV.A.2.m) whose name, datatype and dataspace, or whose data,
// run past the message: libhdf5 1.10 copies the data by the size its type and shape give,
// whatever the message holds. Versions 1 (fields padded to 8 bytes), 2 and 3 (a character set
// byte more); a shared datatype or dataspace is stored elsewhere, and its data size is left to
// libhdf5.
void FileGuard::check_attribute_message(uint64_t chunk_at, const uint8_t* p, uint64_t size) const {
  auto bad = [&](const std::string& why) {
    fail(CKPT_ERR_FORMAT, at_text(chunk_at) + ": an attribute message of " + std::to_string(size) + " bytes " + why);
  };
  if (size < 8) return;  // libhdf5 refuses it
  const unsigned version = p[0];
  if (version < 1 || version > 3) return;
  const bool shared = version >= 2 && (p[1] & 0x03);
  auto padded = [&](uint64_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
  const uint64_t name = padded(little_endian(p + 2, 2)), dt = padded(little_endian(p + 4, 2)), ds = padded(little_endian(p + 6, 2));
  const uint64_t at = version == 3 ? 9 : 8;
  if (name + dt + ds > size - at) bad("names fields of " + std::to_string(name + dt + ds) + " bytes, past its end");
  // libhdf5 copies the name up to its NUL, wherever that is.
  const uint64_t name_bytes = little_endian(p + 2, 2);
  if (name_bytes == 0 || !std::memchr(p + at, 0, name_bytes)) bad("has a name of " + std::to_string(name_bytes) + " bytes without its NUL");
  if (shared || dt < 8 || ds < 2) return;
  const uint8_t* t = p + at + name;
  const uint8_t* d = t + dt;
  const uint64_t element = little_endian(t + 4, 4);
  // The dataspace: version, rank, flags, then (version 1) 5 reserved bytes or (version 2) a
  // type (0 scalar, 1 simple, 2 null), then the dimensions.
  const unsigned rank = d[1];
  uint64_t dims_at = 8, count = 1;
  if (d[0] == 2) {
    if (ds < 4) return;
    if (d[3] == 2) count = 0;
    dims_at = 4;
  } else if (d[0] != 1) {
    return;
  }
  const unsigned L = sb_.sizeof_size;
  if (dims_at + uint64_t{rank} * L > ds) bad("holds a dataspace of " + std::to_string(rank) + " dimensions in " + std::to_string(ds) + " bytes");
  for (unsigned i = 0; i < rank && count; ++i) {
    const uint64_t n = little_endian(d + dims_at + i * L, L);
    if (n && count > UINT64_MAX / n) bad("has a shape of more than 2^64 elements");
    count *= n;
  }
  const uint64_t room = size - at - name - dt - ds;
  if (count && element > room / count)
    bad("holds " + std::to_string(room) + " bytes of data where its type and shape need " +
        (element && count > UINT64_MAX / element ? std::string("more than 2^64") : std::to_string(count * element)));
}

void FileGuard::check_object_header_read(uint64_t offset, const uint8_t* bytes, size_t size, uint64_t eoa) {
  if (checked_.count(offset)) return;
  if (auto it = continuations_.find(offset); it != continuations_.end()) {
    const Continuation c = it->second;
    const uint64_t n = std::min<uint64_t>(size, c.length);
    if (c.version == 1) {
      check_messages(offset, bytes, n, 1, false, eoa);
    } else if (n >= 8 && std::memcmp(bytes, "OCHK", 4) == 0) {  // signature, messages, checksum
      check_messages(offset, bytes + 4, n - 8, 2, c.creation_order, eoa);
    }
    checked_.insert(offset);
    return;
  }
  // A prefix: read the whole first chunk (bounded by the file) and check its messages.
  size_t first = 0, chunk = 0;
  int version = 0;
  bool creation_order = false;
  if (size >= 6 && std::memcmp(bytes, "OHDR", 4) == 0 && bytes[4] == 2) {
    const uint8_t flags = bytes[5];
    size_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
    const unsigned width = 1u << (flags & 3);
    if (size < p + width) return;
    chunk = static_cast<size_t>(std::min<uint64_t>(little_endian(bytes + p, width), eoa));
    first = p + width;
    version = 2;
    creation_order = (flags & 0x04) != 0;
  } else if (size >= 16 && bytes[0] == 1) {  // version 1; libhdf5 skips the reserved byte unread
    chunk = static_cast<size_t>(little_endian(bytes + 8, 4));
    first = 16;
    version = 1;
  } else {
    return;  // not a prefix ckpt knows: libhdf5 refuses it
  }
  if (offset > eoa || first > eoa - offset || chunk > eoa - offset - first)
    fail(CKPT_ERR_FORMAT, at_text(offset) + ": its first chunk of " + std::to_string(chunk) +
                              " bytes runs past the file's " + std::to_string(eoa) + " bytes");
  // Chunk #0's size counts its messages (and gap), not the prefix or a version 2 checksum.
  checked_.insert(offset);
  if (first + chunk <= size) {
    check_messages(offset, bytes + first, chunk, version, creation_order, eoa);
    return;
  }
  checked_.insert(offset + size);
  std::vector<uint8_t> whole(first + chunk);
  read_bytes(whole.data(), whole.size(), offset);
  check_messages(offset, whole.data() + first, chunk, version, creation_order, eoa);
}

}  // namespace ckpt_hdf5

#endif  // CKPT_H5_GUARD_METADATA
