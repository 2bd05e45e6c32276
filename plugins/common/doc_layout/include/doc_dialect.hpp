// What differs between the formats that share the layout: the value of $format, the keys that
// carry a tensor's bytes and how they are stored, a few rules, and the wording of messages
// (tests and users rely on each format's own). Each plugin implements one Dialect.
#pragma once

#include "doc_text.hpp"
#include "doc_tokens.hpp"

#include <ckpt/sdk_tree.hpp>

#include <ckpt/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ckpt_doc {

class LayoutParser;
using Tree = ckpt::sdk::ViewTree;

// What the next value fills.
enum class Slot : uint8_t {
  document,    // the top-level object
  key,         // a key of the current object
  format,      // $format's value
  version,     // $version's value
  attrs,       // $attrs' value
  child,       // a child of a group: a group or a tensor
  attr,        // an attribute value
  attr_item,   // an element of an attribute array
  type,        // a typed value's $type
  value,       // a typed value's $value
  value_item,  // an element of a typed value's array
  dtype,       // $dtype's value
  shape,       // $shape's value
  dim,         // an element of $shape
  payload,     // the value of one of the dialect's payload keys
  payload_item,  // an element of an array a payload key opened
};

// The element types of attribute values.
enum class Elem : uint8_t { none, boolean, int64, float64, string };

// Situations whose wording each format has its own way of saying.
enum class Problem : uint8_t {
  format_value,       // text: what $format says
  version,            // n: a $version other than ours
  no_format,
  no_version,
  format_not_first,   // text: the first key
  reserved_in_group,  // text: the key
  reserved_in_attrs,  // text: the key
  bad_name,           // text: the name; what: "child" or "attribute"; reason
  typed_key,          // text: the key
  tensor_key,         // text: the key
  unknown_dtype,      // text: the name
  int_too_large,      // u; slot says where
  attr_mixed,         // found, holds (the declared type or the elements so far)
  attr_empty_array,
  attr_unknown_type,  // text
  attr_type_after_value,
  attr_no_type,
  attr_no_value,
  attr_type_shape,    // declared_array: whether $type named an array
  attr_inexact,       // text: the integer
  attr_not_float,     // text: the string
};

struct Detail {
  std::string_view text{};
  std::string_view attribute{};  // the attribute being read, if any
  std::string_view type_text{};  // its $type as written
  const char* what = "";
  int64_t n = 0;
  uint64_t u = 0;
  Slot slot = Slot::document;
  Elem found = Elem::none;
  Elem holds = Elem::none;
  Elem declared = Elem::none;
  bool declared_array = false;
  NameFault fault = NameFault::empty;
  uint32_t dtype = 0;
  size_t payload_key = 0;
};

// A tensor being read: where its parts were and what its payload keys found so far.
struct TensorWork {
  size_t index = 0;  // into Tree::tensors, and the tensor's id
  size_t at = 0;     // its object
  size_t shape_at = 0;
  size_t data_at = 0;
  size_t end_at = 0;  // its closing token
  uint32_t payload_seen = 0;  // bit k: payload key k
  uint64_t data_bytes = 0;    // what the payload holds, for the size check
  uint64_t count = 0;         // elements of an array payload
};

class Dialect {
 public:
  // The value of $format.
  std::string_view format_name;
  // The keys besides $dtype and $shape that make a child object a tensor, in the order the
  // writer emits them; their values go to payload_value().
  std::span<const std::string_view> payload_keys;
  // $format must be the first key of the document (msgpack's identify relies on it).
  bool format_first = false;
  // Messages about a container name where it starts (msgpack), not where the parser stood.
  bool blame_items = false;
  // Paths in messages hold every key and array index (msgpack: "model/w/$shape[1]") rather
  // than only group and tensor names (json: "model/w").
  bool full_paths = false;
  // $type may name a single value (bool, int64, float64, string), not only arrays.
  bool typed_scalars = false;
  // Numbers are one kind: integers join float64 arrays, fractions turn an integer array into
  // float64[] (json, whose 1 and 1.0 Python reads as int and float alike).
  bool widen_numbers = false;
  // $type must come before $value.
  bool type_first = false;
  // Strings in a float64 array stand for values the format has no number for
  // (float_from_string).
  bool float_strings = false;
  // Tensors of higher rank are refused (0: only what the file's size bounds).
  size_t max_rank = 0;

  virtual ~Dialect() = default;

  // ---- wording ----
  virtual std::string quote(std::string_view s) const = 0;
  virtual std::string found(const Token& t) const = 0;
  // The whole message for a value of the wrong kind.
  virtual std::string mismatch(Slot slot, const Detail& d, const std::string& found) const = 0;
  virtual std::string say(Problem p, const Detail& d) const = 0;
  virtual ckpt_status_code code(Problem, const Detail&) const { return CKPT_ERR_FORMAT; }
  // Where a path is empty.
  virtual std::string_view root_path() const = 0;

  // ---- values ----
  // A number token as a float64 attribute.
  virtual double number(const LayoutParser& parser, const Token& t) const = 0;
  // A string standing for a float64 ("NaN"); false when the format has none.
  virtual bool float_from_string(std::string_view, double&) const { return false; }

  // ---- payloads ----
  // The value of payload key `key`: false when it is of the wrong kind. An accepted
  // begin_array opens an array whose elements go to payload_element().
  virtual bool payload_value(LayoutParser& parser, TensorWork& w, size_t key, const Token& t) = 0;
  virtual bool payload_element(LayoutParser&, TensorWork&, const Token&) { return false; }
  // At the tensor's end: the payload keys are all there (before the size is computed).
  virtual void payload_keys_present(LayoutParser& parser, const TensorWork& w) = 0;
  // Then: the payload holds exactly `nbytes`.
  virtual void payload_finish(LayoutParser& parser, TensorWork& w, Tree::Tensor& t) = 0;
};

}  // namespace ckpt_doc
