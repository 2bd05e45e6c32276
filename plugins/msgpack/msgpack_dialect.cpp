#include "msgpack_dialect.hpp"

#include "msgpack_layout.hpp"

#include <doc_parser.hpp>

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

#include <cstdio>

namespace ckpt_msgpack {

using ckpt_doc::Detail;
using ckpt_doc::Elem;
using ckpt_doc::LayoutParser;
using ckpt_doc::Problem;
using ckpt_doc::Slot;
using ckpt_doc::TensorWork;
using ckpt_doc::Token;
using ckpt_doc::TokenKind;

namespace {

const char* element_name(Elem e) {
  switch (e) {
    case Elem::boolean: return "bool";
    case Elem::int64: return "int";
    case Elem::float64: return "float";
    case Elem::string: return "str";
    case Elem::none: break;
  }
  return "nothing";
}

const char* expected(Slot s) {
  switch (s) {
    case Slot::document: return "the document map";
    case Slot::key: return "a str key";
    case Slot::format: return "the str \"ckpt-msgpack\"";
    case Slot::version: return "the int 1";
    case Slot::attrs: return "a map of attributes";
    case Slot::child: return "a map (a tensor or a group)";
    case Slot::attr: return "an attribute value (bool, int, float64, str, array or {$type, $value} map)";
    case Slot::attr_item:
    case Slot::value_item: return "a bool, int, float64 or str array element";
    case Slot::type: return "a str naming the array type (bool[], int64[], float64[], string[])";
    case Slot::value: return "an array";
    case Slot::dtype:
      return "a dtype str (f32, f64, f16, bf16, f8_e4m3fn, f8_e5m2, i8, u8, i16, u16, i32, u32, i64, u64, bool, c64, c128)";
    case Slot::shape: return "an array of dimensions";
    case Slot::dim: return "a non-negative int dimension";
    case Slot::payload:
    case Slot::payload_item: return "a bin";
  }
  return "something else";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

MsgpackDialect::MsgpackDialect() {
  format_name = kFormatValue;
  payload_keys = kPayloadKeys;
  format_first = true;
  blame_items = true;
  full_paths = true;
}

std::string MsgpackDialect::quote(std::string_view s) const { return ckpt_doc::quote_text(s, '"', 64); }

std::string MsgpackDialect::found(const Token& t) const {
  switch (t.kind) {
    case TokenKind::begin_object: return "map";
    case TokenKind::begin_array: return "array";
    case TokenKind::string:
    case TokenKind::key: return "str";
    case TokenKind::integer:
    case TokenKind::big_integer: return "int";
    case TokenKind::number: return t.float_bits == 32 ? "float32" : "float64";
    case TokenKind::boolean: return "bool";
    case TokenKind::null: return "nil";
    case TokenKind::binary: return "bin";
    default: return "ext";
  }
}

std::string MsgpackDialect::mismatch(Slot slot, const Detail&, const std::string& found) const {
  return std::string("expected ") + expected(slot) + ", found " + found;
}

std::string MsgpackDialect::say(Problem p, const Detail& d) const {
  switch (p) {
    case Problem::format_value: return "expected $format \"ckpt-msgpack\", found " + quote(d.text);
    case Problem::version:
      if (d.n > static_cast<int64_t>(kVersion))
        return "ckpt-msgpack version " + std::to_string(d.n) + " is newer than this reader (" +
               std::to_string(kVersion) + ")";
      return "expected $version 1, found " + std::to_string(d.n);
    case Problem::no_format: return "the document has no $format";
    case Problem::no_version: return "the document has no $version";
    case Problem::format_not_first:
      return "expected the first key of the document to be \"$format\", found " + quote(d.text);
    case Problem::reserved_in_group:
      if (d.text == kDtypeKey || d.text == kShapeKey || d.text == kPadKey || d.text == kDataKey)
        return "tensor key " + quote(d.text) +
               " in a group (a tensor's first key must be one of $dtype, $shape, $pad, $data)";
      return "unknown reserved key " + quote(d.text) + " (names starting with '$' are written with one more '$')";
    case Problem::reserved_in_attrs:
      return "unknown reserved key " + quote(d.text) +
             " in $attrs (names starting with '$' are written with one more '$')";
    case Problem::bad_name: {
      const char* problem = "";
      switch (d.fault) {
        case ckpt_doc::NameFault::empty: problem = "is empty"; break;
        case ckpt_doc::NameFault::slash: problem = "holds '/'"; break;
        case ckpt_doc::NameFault::nul: problem = "holds a NUL byte"; break;
        case ckpt_doc::NameFault::utf8: problem = "is not valid UTF-8"; break;
      }
      return std::string(d.what) + " name " + quote(d.text) + " " + problem;
    }
    case Problem::typed_key: return "unexpected key " + quote(d.text) + " in a typed array (expected $type, $value)";
    case Problem::tensor_key:
      return "unexpected key " + quote(d.text) + " in a tensor (expected $dtype, $shape, $pad, $data)";
    case Problem::unknown_dtype: return std::string("expected ") + expected(Slot::dtype) + ", found the str " + quote(d.text);
    case Problem::int_too_large: return "int " + std::to_string(d.u) + " does not fit in int64";
    case Problem::attr_mixed:
      if (d.slot == Slot::key)  // at the end of a typed map whose $value came first
        return std::string("$value holds ") + element_name(d.found) + " but $type says " + std::string(d.type_text);
      return std::string("array element is ") + element_name(d.found) + " but the array holds " +
             element_name(d.holds) + " (arrays hold one type)";
    case Problem::attr_empty_array:
      return "an empty array has no element type; write {\"$type\": \"int64[]\", \"$value\": []}";
    case Problem::attr_unknown_type:
      return "expected $type bool[], int64[], float64[] or string[], found " + quote(d.text);
    case Problem::attr_type_after_value: return "$type must come before $value";
    case Problem::attr_no_type: return "typed array has no $type";
    case Problem::attr_no_value: return "typed array has no $value";
    case Problem::attr_type_shape: return "$value must be an array";
    case Problem::attr_inexact:
    case Problem::attr_not_float: return "array element is not a float64";
  }
  return "not the msgpack layout";
}

bool MsgpackDialect::payload_value(LayoutParser&, TensorWork& w, size_t key, const Token& t) {
  if (t.kind != TokenKind::binary) return false;
  if (key == kData) {
    if (offsets_.size() <= w.index) offsets_.resize(w.index + 1);
    offsets_[w.index] = t.offset;
    w.data_bytes = t.size;
    w.data_at = t.at;
  }
  return true;
}

void MsgpackDialect::payload_keys_present(LayoutParser& parser, const TensorWork& w) {
  if (!(w.payload_seen & (1u << kData))) parser.fail(w.at, "tensor has no $data");
}

void MsgpackDialect::payload_finish(LayoutParser& parser, TensorWork& w, ckpt_doc::Tree::Tensor& t) {
  if (w.data_bytes != t.nbytes)
    parser.fail(w.data_at, "$data has " + std::to_string(w.data_bytes) + " bytes, shape " + shape_text(t.shape) +
                               " " + ckpt::sdk::dtype_name(t.dtype) + " needs " + std::to_string(t.nbytes));
}

std::vector<uint64_t> MsgpackDialect::take_offsets(size_t n_tensors) {
  offsets_.resize(n_tensors);
  return std::move(offsets_);
}

}  // namespace ckpt_msgpack
