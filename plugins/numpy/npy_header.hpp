// NumPy's .npy header (NEP 1, numpy/lib/format.py): the magic "\x93NUMPY", a version (1.0, 2.0
// or 3.0), the header's length (2 bytes little-endian in 1.0, 4 in 2.0 and 3.0), and the header
// itself: the text of a Python dict literal with exactly the keys 'descr', 'fortran_order' and
// 'shape', padded with spaces and a newline so the data starts at a multiple of 64. The text is
// parsed as the restricted literal it is (strings, True/False, a tuple of integers); nothing is
// evaluated, and any other token is an error.
#pragma once

#include <ckpt/sdk.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_numpy {

// numpy.lib.format._MAX_HEADER_SIZE: numpy.load refuses a longer header text unless it may
// unpickle; ckpt refuses it always (CKPT_ERR_LIMIT), and never writes one.
inline constexpr uint64_t kMaxHeaderText = 10000;
// NumPy's NPY_MAXDIMS (64 since NumPy 2.0), which is also the host's largest rank.
inline constexpr size_t kMaxDims = 64;
// The most '/'-separated levels a .npz member's key may have (docs/formats/numpy.md): the
// reader refuses deeper members and the writer refuses groups whose members would lie deeper.
inline constexpr size_t kMaxDepth = 64;
// Bytes before the header text: the magic, the version and the length.
inline constexpr uint64_t kPrefix1 = 10, kPrefix2 = 12;
inline constexpr uint64_t kAlign = 64;  // numpy.lib.format.ARRAY_ALIGN

struct NpyHeader {
  int major = 1;
  uint32_t dtype = 0;
  bool swap = false;     // the numbers are big-endian
  bool fortran = false;  // the data is in Fortran (column-major) order
  std::vector<int64_t> shape;
  uint64_t data_offset = 0;  // from the start of the .npy to its data: the whole header
  uint64_t nbytes = 0;       // of the data
  std::string descr;         // as written, for messages

  // The data as stored is what a ckpt tensor holds: little-endian and C order.
  bool plain() const { return !swap && !fortran; }
};

// The whole header's size (the data's offset), from the first bytes of a .npy (`head`: at least
// kPrefix2 bytes, or all there is). Checks the magic, the version and the length's bound.
uint64_t npy_header_size(std::span<const std::byte> head, const std::string& where);

// Parses the header in `bytes` (at least npy_header_size bytes). `where` starts messages
// ("member 'a/b.npy'", "the array header").
NpyHeader parse_npy_header(std::span<const std::byte> bytes, const std::string& where);

// The header numpy.lib.format.write_array writes for a C-order little-endian array of this
// dtype and shape: version 1.0 (2.0 when the text outgrows 65535 bytes), keys sorted, the spare
// room numpy leaves for growing the first axis, padded to a multiple of 64 with the newline last.
std::string make_npy_header(uint32_t dtype, std::span<const int64_t> shape);

// The descr numpy writes for a ckpt dtype ("<f4", "|b1"); nullptr for those NumPy has none of.
const char* npy_descr(uint32_t dtype);

// Copies the stored data (`src`, h.nbytes bytes) into `dst` as a ckpt tensor: C order,
// little-endian.
void to_tensor_layout(const NpyHeader& h, std::span<const std::byte> src, std::span<std::byte> dst);

}  // namespace ckpt_numpy
