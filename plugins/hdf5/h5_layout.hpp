// The names and encodings of the on-disk layout (docs/formats/hdf5.md) that both the writer and
// the reader must agree on.
#pragma once

#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt_hdf5 {

// A root attribute marking a file this plugin wrote. Its name holds '/', which no document name
// can, so it never collides with a document's own attributes; the reader hides it.
inline constexpr const char* kLayoutAttr = "ckpt/layout_version";
inline constexpr int64_t kLayoutVersion = 1;

// How deep groups may nest (the root is depth 0). The reader takes deeper trees as damage (or a
// loop of links), not as data, so the writer refuses them: ckpt never writes a file it refuses.
inline constexpr int kMaxDepth = 256;

// Soft links, which a document has no kind of member for, as two attributes of meta: the
// links' paths in the file and their targets, as HDF5 stores them (paths of stored names). The
// reader records them so; the writer makes them links again and does not store the two
// attributes.
inline constexpr const char* kSoftLinkPaths = "hdf5_soft_link_paths";
inline constexpr const char* kSoftLinkTargets = "hdf5_soft_link_targets";
// External links likewise, never followed: where each is, the file it names, the object in it.
inline constexpr const char* kExternalLinkPaths = "hdf5_external_link_paths";
inline constexpr const char* kExternalLinkFiles = "hdf5_external_link_files";
inline constexpr const char* kExternalLinkObjects = "hdf5_external_link_objects";

// String datasets become values of their group (a scalar string or a string array, flattened
// in C order), recorded as three parallel string arrays of meta: the datasets' absolute paths
// (of document names), their string types (describe_string_type in h5_types.hpp) and their
// shapes ("" for a scalar, "2,3"). The writer makes them datasets again and stores none of the
// three.
inline constexpr const char* kStringDatasetPaths = "hdf5_string_dataset_paths";
inline constexpr const char* kStringDatasetTypes = "hdf5_string_dataset_types";
inline constexpr const char* kStringDatasetShapes = "hdf5_string_dataset_shapes";
// Compound datasets of numeric fields become a group of one tensor per field, in field order;
// this string array of meta names them (absolute paths), and the writer makes them compound
// datasets again.
inline constexpr const char* kCompoundDatasetPaths = "hdf5_compound_dataset_paths";
// Datasets' own attributes: a group of meta holding, per dataset, a group named by the
// dataset's absolute path escaped with ckpt::sdk::escape_name, whose attributes are the
// dataset's. The writer puts them on the datasets and does not store the group.
inline constexpr const char* kDatasetAttributes = "hdf5_dataset_attributes";
// Attributes whose HDF5 type or dataspace their value does not say (an int8, a float32, a
// fixed-length string, a 2-d array, h5py.Empty): four parallel string arrays of meta, one row
// per attribute: its object's absolute path (of document names), its name, its type and its
// shape (h5_attribute_types.hpp names both). The writer makes those attributes of that type
// and shape again and stores none of the four.
inline constexpr const char* kAttributeTypePaths = "hdf5_attribute_type_paths";
inline constexpr const char* kAttributeTypeNames = "hdf5_attribute_type_names";
inline constexpr const char* kAttributeTypes = "hdf5_attribute_types";
inline constexpr const char* kAttributeTypeShapes = "hdf5_attribute_type_shapes";
// A file ckpt did not write is listed as stored, with this string attribute of meta last:
// "file" when the file has a group /meta of its own, "records" when meta holds only records.
// The host's layout for such files (core/src/layouts/keras_legacy.cpp: Keras' weight files)
// recognises the listing by it and removes it; files ckpt wrote are never taken for another
// tool's.
inline constexpr const char* kAsStored = "hdf5_as_stored";

using ckpt::sdk::unescape_name;

// Dtypes HDF5 and NumPy have no type for are stored as unsigned integers of their width with
// this string attribute naming them, as ml_dtypes names them (what other tools look for):
// bf16 as uint16 "bfloat16", the float8s as uint8.
inline constexpr const char* kDtypeAttr = "dtype";
inline constexpr std::string_view kBfloat16 = "bfloat16";
inline constexpr std::string_view kFloat8E4m3fn = "float8_e4m3fn";
inline constexpr std::string_view kFloat8E5m2 = "float8_e5m2";

// HDF5 refuses the link name "." (it means the group itself). Such a name is stored as "%2E",
// and a name that really starts with '%' gets "%25" in front of the rest, so decoding is exact.
// Only applied to files carrying kLayoutAttr; other files' names are taken as they are.
inline std::string escape_link_name(std::string_view name) {
  if (name == ".") return "%2E";
  if (!name.empty() && name[0] == '%') {
    std::string stored("%25");
    stored.append(name.substr(1));
    return stored;
  }
  return std::string(name);
}
// nullopt for a stored name that no escape produces.
inline std::optional<std::string> unescape_link_name(std::string_view stored) {
  if (stored.empty() || stored[0] != '%') return std::string(stored);
  if (stored == "%2E") return std::string(".");
  if (stored.substr(0, 3) == "%25") {
    std::string name(stored.substr(2));
    name[0] = '%';
    return name;
  }
  return std::nullopt;
}

using ckpt::sdk::valid_utf8;  // strict: strings h5py must hand back as str have to pass it

// A variable-length HDF5 string is NUL-terminated and h5py decodes it as UTF-8; a string that
// holds a NUL or is not UTF-8 is stored as a variable-length sequence of uint8 instead.
inline bool needs_byte_encoding(std::string_view s) {
  return s.find('\0') != std::string_view::npos || !valid_utf8(s);
}

}  // namespace ckpt_hdf5
