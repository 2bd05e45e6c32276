// Attribute values a plugin keeps beyond the call that lent them (a reader that builds its tree
// once at open and replays it to every visitor, a writer that stores attributes at the end), the
// names formats store value types under, and the UTF-8 check text fields need.
#pragma once

#include <ckpt/sdk.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::sdk {

// A ckpt_value that owns its storage. Only the member named by `type` is meaningful.
struct Value {
  uint32_t type = 0;  // ckpt_value_type; 0 until set
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<uint8_t> bools;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  static Value boolean(bool v) {
    Value o;
    o.type = CKPT_VALUE_BOOL;
    o.b = v;
    return o;
  }
  static Value integer(int64_t v) {
    Value o;
    o.type = CKPT_VALUE_INT64;
    o.i = v;
    return o;
  }
  static Value floating(double v) {
    Value o;
    o.type = CKPT_VALUE_FLOAT64;
    o.f = v;
    return o;
  }
  static Value string(std::string v) {
    Value o;
    o.type = CKPT_VALUE_STRING;
    o.s = std::move(v);
    return o;
  }
  static Value int_array(std::vector<int64_t> v) {
    Value o;
    o.type = CKPT_VALUE_INT64_ARRAY;
    o.ints = std::move(v);
    return o;
  }
  static Value string_array(std::vector<std::string> v) {
    Value o;
    o.type = CKPT_VALUE_STRING_ARRAY;
    o.strings = std::move(v);
    return o;
  }

  // A deep copy of a value the host lent; `where` names it in the error an unknown type gets.
  static Value copy_of(const ckpt_value& v, const std::string& where) {
    Value o;
    o.type = v.type;
    const uint64_t n = v.count;
    switch (v.type) {
      case CKPT_VALUE_BOOL: o.b = v.u.b != 0; break;
      case CKPT_VALUE_INT64: o.i = v.u.i; break;
      case CKPT_VALUE_FLOAT64: o.f = v.u.f; break;
      case CKPT_VALUE_STRING: o.s.assign(v.u.s.data, v.u.s.size); break;
      case CKPT_VALUE_BOOL_ARRAY:
        o.bools.reserve(n);
        for (uint64_t k = 0; k < n; ++k) o.bools.push_back(v.u.bools[k] ? 1 : 0);
        break;
      case CKPT_VALUE_INT64_ARRAY: o.ints.assign(v.u.ints, v.u.ints + n); break;
      case CKPT_VALUE_FLOAT64_ARRAY: o.floats.assign(v.u.floats, v.u.floats + n); break;
      case CKPT_VALUE_STRING_ARRAY:
        o.strings.reserve(n);
        for (uint64_t k = 0; k < n; ++k) o.strings.emplace_back(v.u.strings[k].data, v.u.strings[k].size);
        break;
      default: fail(CKPT_ERR_INVALID_ARGUMENT, where + " has unknown value type " + std::to_string(v.type));
    }
    return o;
  }

  // Lends the value out, valid while it lives unchanged; `scratch` holds the views of a string
  // array (one per caller, so two threads may list the same tree).
  ckpt_value view(std::vector<ckpt_str>& scratch) const {
    switch (type) {
      case CKPT_VALUE_BOOL: return make_bool(b);
      case CKPT_VALUE_INT64: return make_int(i);
      case CKPT_VALUE_FLOAT64: return make_float(f);
      case CKPT_VALUE_STRING: return make_string(s);
      case CKPT_VALUE_BOOL_ARRAY: return make_bools(bools);
      case CKPT_VALUE_INT64_ARRAY: return make_ints(ints);
      case CKPT_VALUE_FLOAT64_ARRAY: return make_floats(floats);
      case CKPT_VALUE_STRING_ARRAY:
        scratch.clear();
        for (const auto& e : strings) scratch.push_back({e.data(), e.size()});
        return make_strings(scratch);
      default: fail(CKPT_ERR_INTERNAL, "an attribute value without a type");
    }
  }
};

// The names docs/formats/*.md store value types under ("int64", "string[]", ...); nullptr for
// a type this SDK does not know.
inline const char* value_type_name(uint32_t type) {
  switch (type) {
    case CKPT_VALUE_BOOL: return "bool";
    case CKPT_VALUE_INT64: return "int64";
    case CKPT_VALUE_FLOAT64: return "float64";
    case CKPT_VALUE_STRING: return "string";
    case CKPT_VALUE_BOOL_ARRAY: return "bool[]";
    case CKPT_VALUE_INT64_ARRAY: return "int64[]";
    case CKPT_VALUE_FLOAT64_ARRAY: return "float64[]";
    case CKPT_VALUE_STRING_ARRAY: return "string[]";
    default: return nullptr;
  }
}

// The type value_type_name gives `name`, or 0.
inline uint32_t value_type_from_name(std::string_view name) {
  for (uint32_t t = CKPT_VALUE_BOOL; t <= CKPT_VALUE_STRING_ARRAY; ++t)
    if (name == value_type_name(t)) return t;
  return 0;
}

// The offset of the first byte of `s` that does not start a well-formed UTF-8 sequence, or
// std::string_view::npos. Strict, as RFC 3629 says: no overlong forms, UTF-16 surrogates or
// code points past U+10FFFF; that is what JSON text and h5py's strings accept. With
// `allow_surrogates`, lone UTF-16 surrogates pass as well: what Python's pickles hold in a str
// (its "surrogatepass" handler).
inline size_t invalid_utf8_at(std::string_view s, bool allow_surrogates = false) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;  // the range allowed for the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed && !allow_surrogates) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // past U+10FFFF
    } else {
      return i;
    }
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return i;
    i += len;
  }
  return std::string_view::npos;
}

inline bool valid_utf8(std::string_view s) { return invalid_utf8_at(s) == std::string_view::npos; }

// nlohmann's JSON lexer takes a NUL byte for the end of its input and ignores what follows,
// where Python's json and every strict reader refuse it. JSON text holds no raw NUL anywhere
// (in strings it is escaped), so text is checked with this before it is parsed: the offset of
// the first NUL, or npos.
inline size_t json_nul_at(std::string_view text) { return text.find('\0'); }
inline std::string json_nul_problem(std::string_view text) {
  const size_t at = json_nul_at(text);
  return at == std::string_view::npos ? std::string()
                                      : "a NUL byte at character " + std::to_string(at) + " (JSON text cannot hold one)";
}

// Bytes as lowercase hex digits, and back (either case; nullopt for an odd count or a non-digit):
// how JSON text carries bytes that are not UTF-8 and the bits of a float.
inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<uint8_t>(ch);
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

inline std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// How deeply JSON text nests its arrays and objects, found without parsing it: a bound checked
// before handing hostile text to a parser or building a tree of it.
inline int json_nesting(std::string_view text) {
  int depth = 0, worst = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') worst = std::max(worst, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return worst;
}

}  // namespace ckpt::sdk
