// Attribute values to and from HDF5 attributes.
#pragma once

#include "h5_common.hpp"
#include "h5_guard.hpp"

#include <ckpt/sdk_value.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ckpt_hdf5 {

using ckpt::sdk::Value;

// Creates attribute `name` on `obj`. Scalars have a scalar dataspace, arrays a 1-D one (of
// length 0 for an empty array: the datatype still says what the elements are).
void write_attribute(hid_t obj, const std::string& name, const ckpt_value& value,
                     const std::string& where);

// nullopt when the attribute's type has no attribute value to become (compound, reference, ...).
// Multi-dimensional attributes of other tools are flattened into arrays. An attribute whose
// stored size exceeds the file's is damage, refused before allocating; variable-length data is
// checked by `guard` before libhdf5 reads it.
// `unheld`, when given, is set to why a value cannot be held (a uint64 of 2^63 or more, beyond
// the value's int64) and nullopt returned; without it, that is CKPT_ERR_UNSUPPORTED.
std::optional<Value> read_attribute(hid_t attr, const std::string& where, FileGuard& guard, std::string* unheld = nullptr);
// The same for an attribute or a dataset (a string dataset is a value too): `max_bytes` bounds
// the elements as libhdf5 hands them over (a pointer each for variable-length ones), checked
// before anything is allocated.
std::optional<Value> read_value(const ValueSource& src, const std::string& where, FileGuard& guard, uint64_t max_bytes,
                                std::string* unheld = nullptr);

// Reads attribute `name` of `obj` if it exists and is a string.
std::optional<std::string> read_string_attribute(hid_t obj, const char* name, FileGuard& guard);

}  // namespace ckpt_hdf5
