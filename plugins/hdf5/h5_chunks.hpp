// Reading a box of a dataset, with the chunks of deflate/shuffle/fletcher32 datasets decoded
// here rather than by libhdf5.
#pragma once

#include "h5_common.hpp"

#include <span>
#include <string>

namespace ckpt_hdf5 {

// Reads the box [start, start + count) of `dataset` into `dst`, in C order of the box, as
// elements of `memtype`; a box of rank 0 is the whole (scalar) dataset.
//
// libhdf5 before 2.2.0 (1.10 here) trusts the size a filter pipeline produces: a damaged
// deflate chunk that inflates to fewer bytes than the chunk holds makes H5Dread copy past the
// end of its buffer. So, built against those versions (CKPT_H5_DECODE_CHUNKS,
// h5_workarounds.hpp), for a chunked dataset filtered only with deflate, shuffle, fletcher32
// and LZF (the filters h5py and this plugin use), each stored chunk the box touches is read
// raw, checked (inside the file, checksum, decodes to exactly a chunk's size) and decoded
// here, once, as it is read; a damaged one is a FormatError naming the chunk, and chunks
// outside the box are not read at all. Chunks never written (fill value), other layouts and other filters go through
// H5Dread, which also reads only what the box touches. From 2.2.0 only datasets with an LZF
// filter (which libhdf5 cannot decode) are decoded here.
void read_box(hid_t dataset, hid_t memtype, std::span<const hsize_t> start,
              std::span<const hsize_t> count, std::byte* dst, uint64_t file_size,
              const std::string& where);

}  // namespace ckpt_hdf5
