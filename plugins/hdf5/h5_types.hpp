// HDF5 datatypes for the document's dtypes and attribute values, the h5py way, and the mapping
// of datatypes found in other tools' files back to dtypes.
#pragma once

#include "h5_common.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
// How meta/@hdf5_string_dataset_types names a string type: "variable <cset>" or "fixed <size>
// <cset> <padding>", where cset is "ascii" or "utf-8" and padding "nullterm", "nullpad" or
// "spacepad" (h5py's str is "variable utf-8", numpy's S10 "fixed 10 ascii nullpad").
std::string describe_string_type(hid_t type);
// The type a description names, or nullopt for text describe_string_type does not produce.
std::optional<Handle> string_type_from(std::string_view description);

// A field of a compound dataset read as a column tensor: its name, dtype, and the memory type
// that reads it alone (a compound of that one field, at offset 0).
struct CompoundField {
  std::string name;
  uint32_t dtype;
  Handle memtype;
};
// The fields of a compound type (h5py's structured arrays) when every one is of a type
// classify_tensor_type reads as a tensor and is named as a document member can be; else
// nullopt, with `problem` saying why (a string, nested or array field, ...).
// A field that lies outside its record (offset plus size beyond the compound's size), or a
// nested type whose layout does not fit in it, is a FormatError naming `where` and the field:
// libhdf5 converts by these offsets unchecked.
std::optional<std::vector<CompoundField>> compound_fields(hid_t type, const std::string& where, std::string& problem);
// Fails naming `where` when a type's layout does not fit in it: a number's bits outside its
// bytes, a nested compound's fields outside its record (recursively, through enums, arrays
// and sequences).
void check_nested_layout(hid_t type, const std::string& where);
// What reading `fields` of compound `type` as columns and writing them back packed does not
// keep: long-double fields (rounded to f64), big-endian fields, padding or fields out of order;
// empty when nothing.
std::string compound_layout_loss(hid_t type, const std::vector<CompoundField>& fields);
// Compounds of more fields stay unread: libhdf5's conversions cost the square of the fields.
inline constexpr unsigned kMaxCompoundFields = 256;
// The memory type reading field `name` alone: a compound of that one field of type `type`.
Handle column_memtype(const std::string& name, hid_t type);

// The marker a tensor of `dtype` is stored with, or nullptr.
const char* dtype_marker(uint32_t dtype);

}  // namespace ckpt_hdf5
