#include "json_dialect.hpp"

#include "base64.hpp"
#include "json_layout.hpp"
#include "json_numbers.hpp"
#include "json_strings.hpp"

#include <doc_parser.hpp>

#include <ckpt/sdk.hpp>

#include <bit>
#include <cstring>
#include <limits>

namespace ckpt_json {

using ckpt_doc::Detail;
using ckpt_doc::Elem;
using ckpt_doc::LayoutParser;
using ckpt_doc::Problem;
using ckpt_doc::Slot;
using ckpt_doc::TensorWork;
using ckpt_doc::Token;
using ckpt_doc::TokenKind;

namespace {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are stored little-endian and copied as they are");

// The kind of each number in $values: a complex tensor lists its components (real, imaginary,
// real, ...), so its numbers are of the component's kind.
const FloatKind* float_kind(uint32_t dtype) {
  static constexpr FloatKind kinds[] = {FloatKind::f32, FloatKind::f64, FloatKind::f16, FloatKind::bf16,
                                        FloatKind::f8_e4m3fn, FloatKind::f8_e5m2};
  switch (dtype) {
    case CKPT_DTYPE_F32:
    case CKPT_DTYPE_C64: return &kinds[0];
    case CKPT_DTYPE_F64:
    case CKPT_DTYPE_C128: return &kinds[1];
    case CKPT_DTYPE_F16: return &kinds[2];
    case CKPT_DTYPE_BF16: return &kinds[3];
    case CKPT_DTYPE_F8_E4M3FN: return &kinds[4];
    case CKPT_DTYPE_F8_E5M2: return &kinds[5];
    default: return nullptr;
  }
}

size_t number_size(uint32_t dtype) {
  const size_t item = ckpt::sdk::dtype_size(dtype);
  return dtype == CKPT_DTYPE_C64 || dtype == CKPT_DTYPE_C128 ? item / 2 : item;
}

const char* label(Elem e) {
  switch (e) {
    case Elem::boolean: return "a boolean";
    case Elem::int64: return "an integer";
    case Elem::float64: return "a number";
    case Elem::string: return "a string";
    case Elem::none: break;
  }
  return "nothing";
}

std::string attribute(const Detail& d) { return "attribute " + shown(d.attribute) + ": "; }

// Appends one element to a $values tensor.
class Elements {
 public:
  Elements(LayoutParser& parser, TensorWork& w, std::vector<std::byte>& bytes)
      : parser_(parser), w_(w), bytes_(bytes), dtype_(parser.tree().tensors[w.index].dtype) {}

  // False when the token is of a kind this dtype has no element for.
  bool add(const Token& t) {
    switch (t.kind) {
      case TokenKind::boolean:
        if (dtype_ != CKPT_DTYPE_BOOL) return false;
        append(uint8_t{t.b});
        return true;
      case TokenKind::integer: return integer(t);
      case TokenKind::big_integer: return unsigned_integer(t);
      case TokenKind::number: {
        const FloatKind* k = float_kind(dtype_);
        if (!k) return false;
        uint64_t bits = 0;
        if (!parse_float_text(t.text, *k, bits)) out_of_range(t, std::string(t.text));
        append_float_bits(*k, bits);
        return true;
      }
      case TokenKind::string: {
        const FloatKind* k = float_kind(dtype_);
        if (!k) return false;
        uint64_t bits = 0;
        if (!parse_nonfinite(t.text, *k, bits))
          parser_.fail(t.at, "$values: " + shown(t.text) +
                                 " is not a number (strings stand for \"NaN\", \"Infinity\", \"-Infinity\", \"NaN:0x<bits>\")");
        append_float_bits(*k, bits);
        return true;
      }
      default: return false;
    }
  }

 private:
  template <class T>
  void append(T v) {
    const size_t n = bytes_.size();
    bytes_.resize(n + sizeof(T));
    std::memcpy(bytes_.data() + n, &v, sizeof(T));
    ++w_.count;
  }

  void append_float_bits(FloatKind k, uint64_t bits) {
    switch (k) {
      case FloatKind::f8_e4m3fn:
      case FloatKind::f8_e5m2: append(static_cast<uint8_t>(bits)); break;
      case FloatKind::f16:
      case FloatKind::bf16: append(static_cast<uint16_t>(bits)); break;
      case FloatKind::f32: append(static_cast<uint32_t>(bits)); break;
      case FloatKind::f64: append(bits); break;
    }
  }

  [[noreturn]] void out_of_range(const Token& t, const std::string& v) const {
    parser_.fail(t.at, "$values: " + v + " is out of range for " + ckpt::sdk::dtype_name(dtype_) + " (element " +
                           std::to_string(w_.count) + ")");
  }

  template <class T>
  void append_ranged(const Token& t) {
    if (t.i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        t.i > static_cast<int64_t>(std::numeric_limits<T>::max()))
      out_of_range(t, std::to_string(t.i));
    append(static_cast<T>(t.i));
  }

  bool integer(const Token& t) {
    if (const FloatKind* k = float_kind(dtype_)) {
      uint64_t bits = 0;
      if (!float_bits_from_integer(*k, t.i, bits)) out_of_range(t, std::to_string(t.i));
      append_float_bits(*k, bits);
      return true;
    }
    switch (dtype_) {
      case CKPT_DTYPE_I8: append_ranged<int8_t>(t); return true;
      case CKPT_DTYPE_U8: append_ranged<uint8_t>(t); return true;
      case CKPT_DTYPE_I16: append_ranged<int16_t>(t); return true;
      case CKPT_DTYPE_I32: append_ranged<int32_t>(t); return true;
      case CKPT_DTYPE_I64: append(t.i); return true;
      case CKPT_DTYPE_U16: append_ranged<uint16_t>(t); return true;
      case CKPT_DTYPE_U32: append_ranged<uint32_t>(t); return true;
      case CKPT_DTYPE_U64:
        if (t.i < 0) out_of_range(t, std::to_string(t.i));
        append(static_cast<uint64_t>(t.i));
        return true;
      default: return false;
    }
  }

  bool unsigned_integer(const Token& t) {
    if (dtype_ == CKPT_DTYPE_U64) {
      append(t.u);
      return true;
    }
    const FloatKind* k = float_kind(dtype_);
    uint64_t bits = 0;
    if (!k || !float_bits_from_unsigned(*k, t.u, bits)) out_of_range(t, std::to_string(t.u));
    append_float_bits(*k, bits);
    return true;
  }

  LayoutParser& parser_;
  TensorWork& w_;
  std::vector<std::byte>& bytes_;
  uint32_t dtype_;
};

}  // namespace

JsonDialect::JsonDialect(const InputCursor& cursor) : cursor_(cursor) {
  format_name = kFormatName;
  payload_keys = kPayloadKeys;
  typed_scalars = true;
  widen_numbers = true;
  type_first = true;
  float_strings = true;
  max_rank = kMaxRank;
}

std::vector<TensorBytes> JsonDialect::take_bytes(size_t n_tensors) {
  bytes_.resize(n_tensors);
  return std::move(bytes_);
}

TensorBytes& JsonDialect::bytes(size_t tensor) {
  if (bytes_.size() <= tensor) bytes_.resize(tensor + 1);
  return bytes_[tensor];
}

// ---- wording ---------------------------------------------------------------------------------

std::string JsonDialect::quote(std::string_view s) const { return shown(s); }

std::string JsonDialect::found(const Token& t) const {
  switch (t.kind) {
    case TokenKind::begin_object: return "an object";
    case TokenKind::begin_array: return "an array";
    case TokenKind::string: return "a string";
    case TokenKind::integer:
    case TokenKind::big_integer: return "an integer";
    case TokenKind::number: return "a number with a fraction or exponent";
    case TokenKind::boolean: return "a boolean";
    case TokenKind::null: return "null";
    case TokenKind::binary: return "binary data";
    default: return "something else";
  }
}

std::string JsonDialect::mismatch(Slot slot, const Detail& d, const std::string& found) const {
  std::string expected;
  switch (slot) {
    case Slot::document: return "the file must hold one JSON object, found " + found;
    case Slot::key: expected = "expected a key"; break;
    case Slot::format: expected = "$format: expected the string '" + std::string(kFormatName) + "'"; break;
    case Slot::version: expected = "$version: expected the integer 1"; break;
    case Slot::attrs: expected = "$attrs: expected an object of attributes"; break;
    case Slot::child: expected = "child " + shown(d.text) + ": expected an object (a group or a tensor)"; break;
    case Slot::attr:
    case Slot::attr_item:
      expected = attribute(d) + "expected a boolean, number, string, array of those or {\"$type\", \"$value\"}";
      break;
    case Slot::type: expected = attribute(d) + "$type: expected a string"; break;
    case Slot::value: expected = attribute(d) + "$value: expected a boolean, number, string or array"; break;
    case Slot::value_item: expected = attribute(d) + "$value: expected booleans, numbers or strings"; break;
    case Slot::dtype: expected = "$dtype: expected a dtype name string"; break;
    case Slot::shape: expected = "$shape: expected an array of non-negative integers"; break;
    case Slot::dim: expected = "$shape: expected non-negative integers"; break;
    case Slot::payload:
      expected = d.payload_key == kData ? "$data: expected a base64 string" : "$values: expected an array";
      break;
    case Slot::payload_item: {
      const char* what = d.dtype == CKPT_DTYPE_BOOL ? "true or false"
                         : float_kind(d.dtype)      ? "numbers or \"NaN\", \"Infinity\", \"-Infinity\""
                                                    : "integers";
      expected = std::string("$values of a ") + ckpt::sdk::dtype_name(d.dtype) + " tensor: expected " + what;
      break;
    }
  }
  return expected + ", found " + found;
}

std::string JsonDialect::say(Problem p, const Detail& d) const {
  switch (p) {
    case Problem::format_value: return "$format is " + shown(d.text) + ", expected '" + std::string(kFormatName) + "'";
    case Problem::version:
      return "$version is " + std::to_string(d.n) + ", this reader knows version " + std::to_string(kVersion);
    case Problem::no_format: return "the top-level object has no $format";
    case Problem::no_version: return "the top-level object has no $version";
    case Problem::format_not_first: return "the first key is " + shown(d.text) + ", expected $format";
    case Problem::reserved_in_group:
      return "unknown reserved key " + shown(d.text) + " in a group (a name starting with '$' is written as '$$...')";
    case Problem::reserved_in_attrs:
      return "$attrs: unexpected reserved key " + shown(d.text) + " (a name starting with '$' is written as '$$...')";
    case Problem::bad_name:
      switch (d.fault) {
        case ckpt_doc::NameFault::empty: return std::string("empty ") + d.what + " name";
        case ckpt_doc::NameFault::slash: return std::string(d.what) + " name " + shown(d.text) + " contains '/'";
        case ckpt_doc::NameFault::nul: return std::string(d.what) + " name " + shown(d.text) + " contains a NUL character";
        case ckpt_doc::NameFault::utf8: return std::string(d.what) + " name " + shown(d.text) + " is not valid UTF-8";
      }
      break;
    case Problem::typed_key:
      return attribute(d) + "unexpected key " + shown(d.text) + " in a typed value (expected $type and $value)";
    case Problem::tensor_key:
      if (d.text == kAttrsKey) return "a tensor has no $attrs (put attributes on its group)";
      return "unexpected key " + shown(d.text) + " in a tensor (expected $dtype, $shape, $data or $values)";
    case Problem::unknown_dtype:
      return "unknown $dtype " + shown(d.text) +
             " (expected f32, f64, f16, bf16, f8_e4m3fn, f8_e5m2, i8, u8, i16, u16, i32, u32, i64, u64, bool, c64 or c128)";
    case Problem::int_too_large:
      if (d.slot == Slot::dim) return "$shape: dimension " + std::to_string(d.u) + " is too large";
      if (d.slot == Slot::version) return "$version: expected the integer 1, found an integer";
      return attribute(d) + std::to_string(d.u) + " is outside the int64 range";
    case Problem::attr_mixed:
      if (d.declared != Elem::none)
        return attribute(d) + "$type " + shown(d.type_text) + " expects " + label(d.declared) + ", found " + label(d.found);
      return attribute(d) + "array mixes booleans, numbers and strings; an attribute array holds one type";
    case Problem::attr_empty_array:
      return attribute(d) + "an empty array has no element type; write {\"$type\": \"int64[]\", \"$value\": []}";
    case Problem::attr_unknown_type:
      return attribute(d) + "unknown $type " + shown(d.text) +
             " (expected bool, int64, float64, string, bool[], int64[], float64[] or string[])";
    case Problem::attr_type_after_value: return attribute(d) + "$type must come before $value";
    case Problem::attr_no_type: return attribute(d) + "a typed value needs $type";
    case Problem::attr_no_value: return attribute(d) + "a typed value needs $value";
    case Problem::attr_type_shape:
      return attribute(d) + "$type " + shown(d.type_text) +
             (d.declared_array ? " needs an array $value" : " needs a single $value");
    case Problem::attr_inexact:
      return attribute(d) + std::string(d.text) +
             " in a float64 array is not exactly a float64 (Python reads the exact integer)";
    case Problem::attr_not_float:
      return attribute(d) + shown(d.text) +
             " is not a float64 (expected a number, \"NaN\", \"Infinity\", \"-Infinity\" or \"NaN:0x<bits>\")";
  }
  return "not the json layout";
}

ckpt_status_code JsonDialect::code(Problem p, const Detail& d) const {
  return p == Problem::int_too_large && d.slot == Slot::dim ? CKPT_ERR_LIMIT : CKPT_ERR_FORMAT;
}

// ---- values ----------------------------------------------------------------------------------

double JsonDialect::number(const LayoutParser& parser, const Token& t) const {
  uint64_t bits = 0;
  if (!parse_float_text(t.text, FloatKind::f64, bits))
    parser.fail(t.at, "number " + shown(t.text) + " is out of the float64 range");
  return std::bit_cast<double>(bits);
}

bool JsonDialect::float_from_string(std::string_view s, double& v) const {
  uint64_t bits = 0;
  if (!parse_nonfinite(s, FloatKind::f64, bits)) return false;
  v = std::bit_cast<double>(bits);
  return true;
}

// ---- payloads --------------------------------------------------------------------------------

bool JsonDialect::payload_value(LayoutParser& parser, TensorWork& w, size_t key, const Token& t) {
  if (key == kData) {
    if (t.kind != TokenKind::string) return false;
    set_data(parser, w, t);
    return true;
  }
  if (t.kind != TokenKind::begin_array) return false;
  if (parser.tree().tensors[w.index].dtype == 0) parser.fail(t.at, "$values comes before $dtype; write $dtype first");
  return true;
}

bool JsonDialect::payload_element(LayoutParser& parser, TensorWork& w, const Token& t) {
  return Elements(parser, w, bytes(w.index).bytes).add(t);
}

void JsonDialect::set_data(LayoutParser& parser, TensorWork& w, const Token& t) {
  const std::string_view s = t.text;
  // Where the text starts: exact when it is a view into the file, else counted back from the
  // closing quote.
  const bool in_file = cursor_.contains(s.data());
  const size_t start = in_file ? cursor_.offset_of(s.data()) : cursor_.offset() - 1 - s.size();
  const Base64Check c = base64_check(s);
  if (c.error) parser.fail(start + c.error_offset, std::string("$data: ") + c.error);
  TensorBytes& b = bytes(w.index);
  if (in_file) {
    b.base64 = s;
  } else {
    b.bytes.resize(c.decoded_size);
    base64_decode(s, b.bytes.data());
  }
  w.data_bytes = c.decoded_size;
}

void JsonDialect::payload_keys_present(LayoutParser& parser, const TensorWork& w) {
  const bool data = w.payload_seen & (1u << kData), values = w.payload_seen & (1u << kValues);
  if (!data && !values) parser.fail(w.end_at, "tensor has neither $data nor $values");
  if (data && values) parser.fail(w.end_at, "tensor has both $data and $values");
}

void JsonDialect::payload_finish(LayoutParser& parser, TensorWork& w, ckpt_doc::Tree::Tensor& t) {
  auto shape_text = [&] {
    std::string s = "[";
    for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "] " + ckpt::sdk::dtype_name(t.dtype);
  };
  if ((w.payload_seen & (1u << kData)) && w.data_bytes != t.nbytes)
    parser.fail(w.end_at, "$data has " + std::to_string(w.data_bytes) + " bytes, shape " + shape_text() + " needs " +
                              std::to_string(t.nbytes));
  const uint64_t numbers = t.nbytes / number_size(t.dtype);
  if ((w.payload_seen & (1u << kValues)) && w.count != numbers)
    parser.fail(w.end_at, "$values has " + std::to_string(w.count) + " numbers, shape " + shape_text() + " needs " +
                              std::to_string(numbers));
}

}  // namespace ckpt_json
