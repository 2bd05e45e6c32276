// What an attribute's HDF5 datatype and dataspace were, when a value does not say it: the
// reader records them (meta/@hdf5_attribute_type_*, h5_layout.hpp) and the writer makes the
// attribute of that type and shape again, so that h5 -> h5 hands h5py the same attributes.
#pragma once

#include "h5_common.hpp"

#include <ckpt/sdk_value.hpp>

#include <string>

namespace ckpt_hdf5 {

// How the records name a type: a number as NumPy's dtype string ("<i1", ">u2", "<f2", "<f4",
// "<f8"), "bool" (h5py's enum), "bytes" (a variable-length sequence of uint8, ckpt's own
// strings that are not UTF-8), or a string type as describe_string_type names it. Empty for a
// type none of these names.
std::string describe_attribute_type(hid_t type);
// The type the writer gives `value` when nothing is recorded (write_attribute).
std::string default_attribute_type(const ckpt_value& value);
// The dataspace: "" for a scalar, "null" for a null one (h5py.Empty), else the dimensions ("2,3").
std::string describe_attribute_shape(hid_t space);
std::string default_attribute_shape(const ckpt_value& value);

// Creates attribute `name` on `obj` with the recorded type and shape, holding `value` exactly:
// a value the type cannot hold (300 as "<i1", 0.1 as "<f4", a string longer than its fixed size)
// or a shape of another count of elements is CKPT_ERR_INVALID_ARGUMENT naming `where`.
void write_typed_attribute(hid_t obj, const std::string& name, const ckpt_value& value, const std::string& type,
                           const std::string& shape, const std::string& where);

}  // namespace ckpt_hdf5
