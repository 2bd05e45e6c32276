// A document's skeleton (ckpt::sdk::Tree: groups, typed attributes and tensor descriptions,
// no tensor bytes) as JSON text, for formats that store ckpt's document beside their own data
// (onnx's "ckpt.document" metadata entry, pytorch's ckpt/document.json, the hello example's
// header). Compiled into libckpt_sdk_static.a, which ckpt::sdk links into every plugin, so this
// header needs no JSON library. One writer and one parser; what differs between formats (the key spellings, how a child names itself, how
// floats are written) is a SkeletonKeys, so files already written keep reading and a format's
// output stays byte for byte what it was.
//
//   {"format": <format>, "version": <version>, "root": group}
//   group  = {<attributes>: [[name, type, value], ...], <children>: [child, ...]}
//   child  = name_in_child ? {"group": name, ...group} | {"tensor": name, ...tensor}
//                          : [name, group] | [name, tensor]
//   tensor = {"dtype": "f32", "shape": [2, 3], <location>: text}
//
// Exact for every attribute: int64 as JSON integers; float64 as 16 hex digits of its bits, or
// (floats_as_bits off) as a number when finite and not -0.0 (nlohmann prints the shortest text
// that reads back to the same double) and otherwise {"bits": "<16 hex digits>"}; strings as
// JSON strings when valid UTF-8, otherwise {"hex": "..."}. The parser reads every float form.
// The fields after max_depth spell a format's own older layout (safetensors' "ckpt.document":
// keys in order, named floats, UTF-8 only, tensors by name), so that its bytes stay as they were.
#pragma once

#include <ckpt/sdk_tree.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace ckpt::sdk {

struct SkeletonKeys {
  std::string_view format;      // the value of "format"
  int64_t version = 1;          // written; a reader refuses newer ones as unsupported
  std::string_view attributes;  // the group's attribute list
  std::string_view children;    // the group's child list
  std::string_view location;    // the tensor's text saying where its bytes are
  bool name_in_child = true;    // {"group": name, ...}, else [name, {...}]
  bool floats_as_bits = false;  // every float64 as its bits
  bool omit_empty = false;      // no empty attribute or child list (the parser takes either)
  size_t max_depth = 1024;      // groups nested deeper are a limit error
  // Members in the order the layout above lists them (a child's name first), not sorted by key.
  bool keys_in_order = false;
  // Floats JSON has no number for as "Infinity", "-Infinity", "NaN" (the canonical quiet NaN)
  // or "NaN:0x<16 hex digits>"; every other one, -0.0 too, as a number.
  bool named_floats = false;
  // Strings only as JSON strings: writing one that is not UTF-8 is CKPT_ERR_UNSUPPORTED.
  bool utf8_only = false;
  // A tensor is {"tensor": name} alone, as the format's own index describes it: the parser's
  // callback gives it its dtype, shape and bytes. Needs name_in_child.
  bool name_only_tensors = false;
};

// The JSON text of `tree`; `location(tensor index)` gives each tensor's location text.
std::string write_skeleton(const Tree& tree, const SkeletonKeys& keys,
                           const std::function<std::string_view(size_t)>& location);

// One attribute value as the JSON the skeleton holds it in (its float and text forms per `keys`).
std::string write_value(const Value& value, const SkeletonKeys& keys);

struct SkeletonSource {
  // Message prefix naming the place in the document (a '/'-separated path, "" for the root).
  std::function<std::string(const std::string& path)> where;
  // What the tree may cost in memory (ReadLimits::document_bytes_for).
  uint64_t max_bytes = UINT64_MAX;
};

// Called once per tensor, in document order, with the tensor as parsed (its id unset), its
// location text and its path; returns the tensor's id. With name_only_tensors the tensor has
// only its name and the location is empty: the callback sets dtype, shape and nbytes.
using OnSkeletonTensor = std::function<uint64_t(Tree::Tensor& tensor, std::string location, const std::string& path)>;

// Parses the text. Throws Error: CKPT_ERR_FORMAT naming the place for anything that
// is not the layout (unknown keys, duplicate names, bad values), CKPT_ERR_UNSUPPORTED for a
// newer version, CKPT_ERR_LIMIT past max_depth or max_bytes.
Tree read_skeleton(std::string_view text, const SkeletonKeys& keys, const SkeletonSource& source,
                              const OnSkeletonTensor& on_tensor);

}  // namespace ckpt::sdk
