#include "json_writer.hpp"

#include "base64.hpp"
#include "json_numbers.hpp"
#include "json_strings.hpp"
#include "json_layout.hpp"

#include <ckpt/sdk_value.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>

namespace ckpt_json {
namespace {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are stored little-endian and copied as they are");

// Input bytes per base64 piece: a multiple of 3, so only the last piece carries padding.
constexpr size_t kBase64Piece = 3 * 64 * 1024;
constexpr size_t kFlushAt = 256 * 1024;

bool parse_encoding(ckpt::sdk::Options& options) {
  std::string e = options.get("tensor_encoding", "base64");
  if (e == "base64") return false;
  if (e == "numbers") return true;
  ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT,
            "option tensor_encoding='" + e + "' for format json: expected base64 or numbers");
}

size_t parse_indent(ckpt::sdk::Options& options) {
  std::string s = options.get("indent", "1");
  unsigned v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v > 8)
    ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option indent='" + s + "' for format json: expected 0 to 8");
  return v;
}

template <class Int>
void append_integer(std::string& out, Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}
void append_int(std::string& out, int64_t v) { append_integer(out, v); }
void append_uint(std::string& out, uint64_t v) { append_integer(out, v); }

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

JsonWriter::JsonWriter(const std::string& path, ckpt::sdk::Options& options)
    : LayoutWriter("json"), numbers_(parse_encoding(options)), indent_(parse_indent(options)), out_(path) {}

void JsonWriter::check_text(std::string_view s, const std::string& where) const {
  // Checked here because a string the writer stores must come back byte for byte, and
  // nlohmann's reader rejects what is not UTF-8.
  const size_t bad = ckpt::sdk::invalid_utf8_at(s);
  if (bad != std::string_view::npos)
    ckpt::sdk::fail(CKPT_ERR_UNSUPPORTED, where + ": not valid UTF-8 (byte " + std::to_string(bad) +
                                              "); the json format stores text only");
}

void JsonWriter::newline(size_t depth) {
  text_.push_back('\n');
  text_.append(depth * indent_, ' ');
}

void JsonWriter::append_key(std::string_view name) { append_json_string(text_, name_to_key(name)); }

// Starts a child of the innermost group: separator, line, key.
void JsonWriter::open_member(std::string_view name) {
  Level& level = levels_.back();
  if (level.has_members) text_.push_back(',');
  level.has_members = true;
  newline(levels_.size());
  append_key(name);
  text_ += ": ";
}

void JsonWriter::open_root(uint64_t) {
  text_.push_back('{');
  newline(1);
  append_json_string(text_, kFormatKey);
  text_ += ": ";
  append_json_string(text_, kFormatName);
  text_.push_back(',');
  newline(1);
  append_json_string(text_, kVersionKey);
  text_ += ": ";
  append_int(text_, kVersion);
  levels_.push_back({.has_members = true});
}

void JsonWriter::open_group(std::string_view name, uint64_t) {
  open_member(name);
  text_.push_back('{');
  levels_.push_back({});
}

void JsonWriter::open_attrs(uint64_t) {
  Level& l = levels_.back();
  if (l.has_members) text_.push_back(',');
  l.has_members = true;
  newline(levels_.size());
  append_json_string(text_, kAttrsKey);
  text_ += ": {";
  l.attrs_has_members = false;
}

void JsonWriter::write_attribute(std::string_view name, const ckpt_value& value, const std::string& where) {
  Level& l = levels_.back();
  if (l.attrs_has_members) text_.push_back(',');
  l.attrs_has_members = true;
  newline(levels_.size() + 1);
  append_key(name);
  text_ += ": ";
  append_value(value, where);
  if (text_.size() >= kFlushAt) flush_text();
}

void JsonWriter::close_attrs() {
  newline(levels_.size());
  text_.push_back('}');
}

void JsonWriter::close_group(bool) {
  const bool members = levels_.back().has_members;
  levels_.pop_back();
  if (members) newline(levels_.size());
  text_.push_back('}');
  if (text_.size() >= kFlushAt) flush_text();
}

void JsonWriter::append_value(const ckpt_value& v, const std::string& where) {
  auto open_typed = [&] {
    text_ += "{\"$type\": \"";
    text_ += ckpt::sdk::value_type_name(v.type);  // only float64 and the arrays are typed
    text_ += "\", \"$value\": ";
  };
  auto list = [&](auto&& element) {
    text_.push_back('[');
    for (uint64_t i = 0; i < v.count; ++i) {
      if (i) text_ += ", ";
      element(i);
    }
    text_.push_back(']');
  };
  switch (v.type) {
    case CKPT_VALUE_BOOL:
      text_ += v.u.b ? "true" : "false";
      return;
    case CKPT_VALUE_INT64:
      append_int(text_, v.u.i);
      return;
    case CKPT_VALUE_FLOAT64: {
      auto bits = std::bit_cast<uint64_t>(v.u.f);
      if (is_finite_bits(FloatKind::f64, bits)) return append_double(text_, v.u.f);
      open_typed();
      append_float_value(text_, FloatKind::f64, bits);
      text_.push_back('}');
      return;
    }
    case CKPT_VALUE_STRING: {
      std::string_view s(v.u.s.data, v.u.s.size);
      check_text(s, where);
      append_json_string(text_, s);
      return;
    }
    case CKPT_VALUE_BOOL_ARRAY:
    case CKPT_VALUE_INT64_ARRAY:
    case CKPT_VALUE_FLOAT64_ARRAY:
    case CKPT_VALUE_STRING_ARRAY:
      break;
    default:
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, where + ": unknown value type " + std::to_string(v.type));
  }
  // Arrays: a plain JSON array when its elements say their type, else {"$type", "$value"}.
  bool typed = v.count == 0;
  if (v.type == CKPT_VALUE_FLOAT64_ARRAY)
    for (uint64_t i = 0; i < v.count && !typed; ++i)
      typed = !is_finite_bits(FloatKind::f64, std::bit_cast<uint64_t>(v.u.floats[i]));
  if (typed) open_typed();
  switch (v.type) {
    case CKPT_VALUE_BOOL_ARRAY:
      list([&](uint64_t i) { text_ += v.u.bools[i] ? "true" : "false"; });
      break;
    case CKPT_VALUE_INT64_ARRAY:
      list([&](uint64_t i) { append_int(text_, v.u.ints[i]); });
      break;
    case CKPT_VALUE_FLOAT64_ARRAY:
      list([&](uint64_t i) {
        append_float_value(text_, FloatKind::f64, std::bit_cast<uint64_t>(v.u.floats[i]));
      });
      break;
    default:
      list([&](uint64_t i) {
        std::string_view s(v.u.strings[i].data, v.u.strings[i].size);
        check_text(s, where + " element " + std::to_string(i));
        append_json_string(text_, s);
      });
      break;
  }
  if (typed) text_.push_back('}');
}

void JsonWriter::write_tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data,
                              const std::string&) {
  open_member(info.name);
  text_ += "{\"$dtype\": \"";
  text_ += ckpt::sdk::dtype_name(info.dtype);
  text_ += "\", \"$shape\": [";
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (i) text_ += ", ";
    append_int(text_, info.shape[i]);
  }
  text_ += "], ";
  if (numbers_) {
    text_ += "\"$values\": [";
    write_numbers(info.dtype, data);
    text_ += "]}";
  } else {
    text_ += "\"$data\": \"";
    write_base64(data);
    text_ += "\"}";
  }
  if (text_.size() >= kFlushAt) flush_text();
}

void JsonWriter::write_base64(std::span<const std::byte> data) {
  if (data.size() <= 3 * 1024) {
    size_t at = text_.size();
    text_.resize(at + base64_encoded_size(data.size()));
    base64_encode(data, text_.data() + at);
    return;
  }
  flush_text();
  chunk_.resize(base64_encoded_size(kBase64Piece));
  for (size_t off = 0; off < data.size(); off += kBase64Piece) {
    auto piece = data.subspan(off, std::min(kBase64Piece, data.size() - off));
    base64_encode(piece, chunk_.data());
    out_.write(chunk_.data(), base64_encoded_size(piece.size()));
  }
}

void JsonWriter::write_numbers(uint32_t dtype, std::span<const std::byte> data) {
  // A complex element is two numbers, its real and imaginary parts.
  if (dtype == CKPT_DTYPE_C64) dtype = CKPT_DTYPE_F32;
  if (dtype == CKPT_DTYPE_C128) dtype = CKPT_DTYPE_F64;
  size_t item = ckpt::sdk::dtype_size(dtype);
  size_t n = data.size() / item;
  const std::byte* p = data.data();
  for (size_t i = 0; i < n; ++i, p += item) {
    if (i) text_ += ", ";
    switch (dtype) {
      case CKPT_DTYPE_F32: append_float_value(text_, FloatKind::f32, load<uint32_t>(p)); break;
      case CKPT_DTYPE_F64: append_float_value(text_, FloatKind::f64, load<uint64_t>(p)); break;
      case CKPT_DTYPE_F16: append_float_value(text_, FloatKind::f16, load<uint16_t>(p)); break;
      case CKPT_DTYPE_BF16: append_float_value(text_, FloatKind::bf16, load<uint16_t>(p)); break;
      case CKPT_DTYPE_I8: append_int(text_, load<int8_t>(p)); break;
      case CKPT_DTYPE_U8: append_int(text_, load<uint8_t>(p)); break;
      case CKPT_DTYPE_I16: append_int(text_, load<int16_t>(p)); break;
      case CKPT_DTYPE_I32: append_int(text_, load<int32_t>(p)); break;
      case CKPT_DTYPE_I64: append_int(text_, load<int64_t>(p)); break;
      case CKPT_DTYPE_U16: append_int(text_, load<uint16_t>(p)); break;
      case CKPT_DTYPE_U32: append_int(text_, load<uint32_t>(p)); break;
      case CKPT_DTYPE_U64: append_uint(text_, load<uint64_t>(p)); break;
      case CKPT_DTYPE_F8_E4M3FN: append_float_value(text_, FloatKind::f8_e4m3fn, load<uint8_t>(p)); break;
      case CKPT_DTYPE_F8_E5M2: append_float_value(text_, FloatKind::f8_e5m2, load<uint8_t>(p)); break;
      default: text_ += load<uint8_t>(p) ? "true" : "false"; break;
    }
    if (text_.size() >= kFlushAt) flush_text();
  }
}

void JsonWriter::flush_text() {
  out_.write(text_);
  text_.clear();
}

void JsonWriter::close_document() {
  text_.push_back('\n');
  flush_text();
  out_.close();
}

}  // namespace ckpt_json
