// A document's skeleton (ckpt::sdk::Tree: groups, typed attributes and tensor descriptions,
// no tensor bytes) as JSON text, for formats that store ckpt's document beside their own data
// (onnx's and safetensors' "ckpt.document" metadata entries, pytorch's ckpt/document.json, the
// hello example's header). Compiled into libckpt_sdk_static.a, which ckpt::sdk links into every plugin, so this
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
// keys in order, named floats, UTF-8 only, tensors by name) and its reader's rules, so that its
// bytes and what its reader accepts stay as they were.
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
  // The parser also takes a group without its attribute or child list (the writer still
  // writes both unless omit_empty).
  bool lists_optional = false;
  // The parser refuses a key twice in one object (a DOM would keep one of the two silently),
  // keys beside "format", "version" and "root" at the top, and a "group" name on the root.
  bool strict_keys = false;
  // The parser refuses a text of more than this many JSON values (every value and container,
  // not keys; 0: no bound) while it builds the DOM, which costs memory per value.
  size_t max_values = 0;
  // JSON nesting per group level (a group's child list, the child, and with !name_in_child the
  // pair), for the bound checked on the text before it is parsed.
  size_t levels_per_group = 3;
};

// The JSON text of `tree`; `location(tensor index)` gives each tensor's location text.
std::string write_skeleton(const Tree& tree, const SkeletonKeys& keys,
                           const std::function<std::string_view(size_t)>& location);

// One attribute value as the JSON the skeleton holds it in (its float and text forms per `keys`).
std::string write_value(const Value& value, const SkeletonKeys& keys);

// Where the parser is in the text, for a message: the document path the codec's own words name
// (a '/'-separated path, "" for the root; for a problem of a child or an attribute, its
// group's), and the JSON steps from the top of the text to the value at fault, which a
// format's own words may name instead (json_pointer).
struct SkeletonStep {
  std::string_view key;  // a member of an object, or (empty) an element of an array:
  size_t index = 0;
};
struct SkeletonPlace {
  std::string_view path{};
  std::span<const SkeletonStep> steps{};
};
// "/root/members/0/attributes/1/2": the steps as a JSON pointer (keys unescaped).
std::string json_pointer(std::span<const SkeletonStep> steps);

// What the parser found wrong; each has the codec's own words (below, read_skeleton), which a
// format may replace with its own (SkeletonSource::describe).
enum class SkeletonProblem {
  text_too_deep,       // CKPT_ERR_LIMIT: the text nests deeper than the groups may
  text_has_nul,        // detail: json_nul_problem
  text_not_json,       // detail: nlohmann's message; number: the byte it stopped at
  too_many_values,     // CKPT_ERR_LIMIT; number: max_values
  duplicate_key,       // name
  not_an_object,       // the text is not a JSON object
  unknown_top_key,     // name
  wrong_format,        // name: the format's name
  version_not_integer,
  version_unknown,     // number: the version (newer: CKPT_ERR_UNSUPPORTED)
  no_root,
  group_not_object,
  group_too_deep,      // CKPT_ERR_LIMIT; number: max_depth
  unknown_group_key,   // name; root: the group is the root
  list_missing,        // name: the list's key
  list_not_array,      // name: the list's key
  child_not_object,    // name_in_child
  child_not_pair,      // !name_in_child
  child_kind,          // neither or (without name_only_tensors) both of "tensor" and "group"
  unknown_tensor_key,  // name; with name_only_tensors the child's place, else the tensor's
  not_text,            // detail: whose text, "tensor" or "group" (a child's name, name_in_child),
                       // "child", "attribute", "value", "element" (of a string[]) or "location"
  bad_name,            // name: the name; detail: as not_text's
  attribute_not_triple,
  unknown_type,        // name: the type's name
  wrong_value,         // name: the value's type name; detail: what JSON was found (a type
                       // name, or a float's string); number: 1 for an array's element
  int_out_of_range,    // detail: the integer's text
  not_an_array,        // name: the value's type name
  too_costly,          // CKPT_ERR_LIMIT; number: max_bytes
  duplicate_child,     // name (found by read_skeleton's own tree)
  duplicate_attribute, // name
  bad_dtype,           // a tensor's "dtype" (without name_only_tensors)
  bad_shape,           // a tensor's "shape"
  negative_dimension,  // number: the dimension
  no_location,         // name: the location's key
};
struct SkeletonFault {
  SkeletonProblem problem;
  SkeletonPlace at{};
  std::string_view name{};
  std::string_view detail{};
  int64_t number = 0;
  bool root = false;        // the group at fault is the root
  bool element = false;     // the value at fault is an element of an array
  bool found_text = false;  // a float64 was a string, `detail`
};

// The codec's own words for a fault, without the place.
std::string skeleton_words(const SkeletonFault& fault, const SkeletonKeys& keys);

struct SkeletonSource {
  // Message prefix naming the place in the document (a '/'-separated path, "" for the root).
  std::function<std::string(const std::string& path)> where;
  // What the tree may cost in memory (ReadLimits::document_bytes_for).
  uint64_t max_bytes = UINT64_MAX;
  // The whole message for a fault, in the format's own words; unset, the codec's words after
  // where(fault.at.path).
  std::function<std::string(const SkeletonFault& fault)> describe;
};

// Where read_skeleton puts what it parsed: the groups, attributes and tensors in document
// order, each with its place (a child's path is its group's). The sink refuses a name its group
// holds already (in the words of its format) and keeps what it needs: the views it gets live
// only for the call. Throwing stops the parse.
class SkeletonSink {
 public:
  virtual ~SkeletonSink() = default;
  // Before anything else of the child named `name` is read (its group or tensor follows).
  virtual void child_name(size_t /*parent*/, std::string_view /*name*/, const SkeletonPlace& /*at*/) {}
  // Returns the new group's index; the root is 0.
  virtual size_t group(size_t parent, std::string_view name, const SkeletonPlace& at) = 0;
  // Before the value is read (so a second name fails first).
  virtual void attribute_name(size_t group, std::string_view name, const SkeletonPlace& at) = 0;
  virtual void attribute(size_t group, std::string_view name, ValueView&& value, const SkeletonPlace& at) = 0;
  // `tensor` as parsed (its id unset; with name_only_tensors its name alone), `location` its
  // location text (empty with name_only_tensors), `path` its document path.
  virtual void tensor(size_t parent, ViewTree::Tensor&& tensor, std::string_view location, std::string_view path,
                      const SkeletonPlace& at) = 0;
};

// Called once per tensor, in document order, with the tensor as parsed (its id unset), its
// location text and its path; returns the tensor's id. With name_only_tensors the tensor has
// only its name and the location is empty: the callback sets dtype, shape and nbytes.
using OnSkeletonTensor = std::function<uint64_t(Tree::Tensor& tensor, std::string location, const std::string& path)>;

// Parses the text. Throws Error: CKPT_ERR_FORMAT naming the place for anything that
// is not the layout (unknown keys, duplicate names, bad values), CKPT_ERR_UNSUPPORTED for a
// newer version, CKPT_ERR_LIMIT past max_depth, max_values or max_bytes.
Tree read_skeleton(std::string_view text, const SkeletonKeys& keys, const SkeletonSource& source,
                   const OnSkeletonTensor& on_tensor);

// The same parse into the caller's sink: a reader that lists a tree of views (ViewTree) builds
// it with no copy of what its file holds already.
void read_skeleton(std::string_view text, const SkeletonKeys& keys, const SkeletonSource& source, SkeletonSink& sink);

}  // namespace ckpt::sdk
