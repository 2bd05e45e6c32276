// HDF5 datatypes for the document's dtypes and attribute values, the h5py way, and the mapping
// of datatypes found in other tools' files back to dtypes.
#pragma once

#include "h5_common.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace ckpt_hdf5 {

// IEEE binary16, built as h5py builds it, so numpy reads float16.
Handle make_f16_type();
// h5py's bool: an enum over int8 with FALSE=0 and TRUE=1.
Handle make_bool_type();
// Variable-length UTF-8 string (h5py reads str).
Handle make_vlen_string_type();
// Variable-length sequence of uint8: strings that a vlen string cannot hold.
Handle make_vlen_bytes_type();

// The type a tensor of `dtype` is stored as; it is also the memory type (little-endian host).
Handle tensor_type(uint32_t dtype);

// True for an enum with exactly the members FALSE=0 and TRUE=1 over a one-byte integer.
bool is_bool_enum(hid_t type);

// How a dataset of another tool's type is read: the dtype it becomes and the memory type HDF5
// converts into (nullopt: not representable as a tensor, e.g. strings or compounds other than
// h5py's complex).
struct TensorType {
  uint32_t dtype;
  Handle memtype;
};
// `marker` is the dataset's dtype attribute (kDtypeAttr), empty when it has none.
std::optional<TensorType> classify_tensor_type(hid_t file_type, std::string_view marker);
// The marker a tensor of `dtype` is stored with, or nullptr.
const char* dtype_marker(uint32_t dtype);

}  // namespace ckpt_hdf5
