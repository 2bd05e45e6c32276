// A check of a chunked dataset's stored chunks before libhdf5 decodes them.
#pragma once

#include "h5_common.hpp"

#include <string>

namespace ckpt_hdf5 {

// libhdf5 1.10 trusts the size a filter pipeline produces: a damaged deflate chunk that
// inflates to fewer bytes than the chunk holds makes H5Dread copy past the end of its buffer.
// So before H5Dread of a dataset filtered with deflate, shuffle and fletcher32 (the filters
// h5py and this plugin use), every stored chunk is decoded here and its size compared with the
// chunk's; a mismatch is a FormatError naming the chunk. Other filters are left to libhdf5.
void check_chunks(hid_t dataset, uint64_t file_size, const std::string& where);

}  // namespace ckpt_hdf5
