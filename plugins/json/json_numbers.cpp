#include "json_numbers.hpp"

#include <ckpt/sdk_float.hpp>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace ckpt_json {
namespace {

using ckpt::sdk::bf16_to_f32;
using ckpt::sdk::f16_to_f32;
using ckpt::sdk::f32_to_bf16;
using ckpt::sdk::f32_to_f16;

struct KindInfo {
  unsigned width;        // bits
  uint64_t exp_mask;     // all exponent bits
  uint64_t mant_mask;
  uint64_t canonical_nan;
  bool finite_only = false;  // no infinities; NaN is every exponent and mantissa bit (e4m3fn)
};

KindInfo info(FloatKind k) {
  switch (k) {
    case FloatKind::f8_e4m3fn: return {8, 0x78, 0x07, 0x7F, true};
    case FloatKind::f8_e5m2: return {8, 0x7C, 0x03, 0x7E};
    case FloatKind::f16: return {16, 0x7C00, 0x03FF, 0x7E00};
    case FloatKind::bf16: return {16, 0x7F80, 0x007F, 0x7FC0};
    case FloatKind::f32: return {32, 0x7F800000, 0x007FFFFF, 0x7FC00000};
    case FloatKind::f64: break;
  }
  return {64, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF, 0x7FF8000000000000};
}

bool is_nan_bits(const KindInfo& ki, uint64_t bits) {
  if (ki.finite_only) return (bits & (ki.exp_mask | ki.mant_mask)) == (ki.exp_mask | ki.mant_mask);
  return (bits & ki.exp_mask) == ki.exp_mask && (bits & ki.mant_mask) != 0;
}

// to_chars prints integral values without a point ("1", "-0"); the reader would take those
// for integers.
void append_marked(std::string& out, const char* b, const char* e) {
  out.append(b, e);
  if (!std::memchr(b, '.', static_cast<size_t>(e - b)) && !std::memchr(b, 'e', static_cast<size_t>(e - b)))
    out.append(".0");
}

void append_float(std::string& out, float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  append_marked(out, buf, r.ptr);
}

bool bits_from_float(FloatKind k, float f, uint64_t& bits) {
  if (!std::isfinite(f)) return false;
  switch (k) {
    case FloatKind::f16: bits = f32_to_f16(f); break;
    case FloatKind::bf16: bits = f32_to_bf16(f); break;
    case FloatKind::f8_e4m3fn: bits = ckpt::sdk::f32_to_f8_e4m3fn(f); break;
    case FloatKind::f8_e5m2: bits = ckpt::sdk::f32_to_f8_e5m2(f); break;
    default: bits = std::bit_cast<uint32_t>(f); break;
  }
  return is_finite_bits(k, bits);
}

}  // namespace

bool is_finite_bits(FloatKind k, uint64_t bits) {
  KindInfo ki = info(k);
  if (ki.finite_only) return !is_nan_bits(ki, bits);
  return (bits & ki.exp_mask) != ki.exp_mask;
}

void append_double(std::string& out, double v) {
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  append_marked(out, buf, r.ptr);
}

void append_float_value(std::string& out, FloatKind k, uint64_t bits) {
  if (!is_finite_bits(k, bits)) {
    out.push_back('"');
    out += nonfinite_token(k, bits);
    out.push_back('"');
    return;
  }
  switch (k) {
    case FloatKind::f16: append_float(out, f16_to_f32(static_cast<uint16_t>(bits))); break;
    case FloatKind::bf16: append_float(out, bf16_to_f32(static_cast<uint16_t>(bits))); break;
    case FloatKind::f32: append_float(out, std::bit_cast<float>(static_cast<uint32_t>(bits))); break;
    case FloatKind::f64: append_double(out, std::bit_cast<double>(bits)); break;
    case FloatKind::f8_e4m3fn: append_float(out, ckpt::sdk::f8_e4m3fn_to_f32(static_cast<uint8_t>(bits))); break;
    case FloatKind::f8_e5m2: append_float(out, ckpt::sdk::f8_e5m2_to_f32(static_cast<uint8_t>(bits))); break;
  }
}

std::string nonfinite_token(FloatKind k, uint64_t bits) {
  KindInfo ki = info(k);
  uint64_t sign = uint64_t{1} << (ki.width - 1);
  if (!is_nan_bits(ki, bits)) return (bits & sign) ? "-Infinity" : "Infinity";
  if (bits == ki.canonical_nan) return "NaN";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "NaN:0x";
  for (int shift = static_cast<int>(ki.width) - 4; shift >= 0; shift -= 4)
    s.push_back(kHex[(bits >> shift) & 15]);
  return s;
}

bool parse_nonfinite(std::string_view s, FloatKind k, uint64_t& bits) {
  KindInfo ki = info(k);
  uint64_t sign = uint64_t{1} << (ki.width - 1);
  if (s == "NaN") {
    bits = ki.canonical_nan;
    return true;
  }
  if ((s == "Infinity" || s == "-Infinity") && !ki.finite_only) {
    bits = ki.exp_mask | (s[0] == '-' ? sign : 0);
    return true;
  }
  constexpr std::string_view prefix = "NaN:0x";
  if (s.size() != prefix.size() + ki.width / 4 || s.substr(0, prefix.size()) != prefix) return false;
  uint64_t v = 0;
  auto r = std::from_chars(s.data() + prefix.size(), s.data() + s.size(), v, 16);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !is_nan_bits(ki, v)) return false;
  bits = v;
  return true;
}

bool parse_float_text(std::string_view s, FloatKind k, uint64_t& bits) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (k == FloatKind::f64) {
    double d = 0;
    auto r = std::from_chars(b, e, d);
    if (r.ec != std::errc() || r.ptr != e || !std::isfinite(d)) return false;
    bits = std::bit_cast<uint64_t>(d);
    return true;
  }
  // Halves go through float: text we write for a half is its exact float value, so this is
  // exact for our files and a correct rounding of the float for hand-written ones.
  float f = 0;
  auto r = std::from_chars(b, e, f);
  if (r.ec != std::errc() || r.ptr != e) return false;
  return bits_from_float(k, f, bits);
}

bool float_bits_from_integer(FloatKind k, int64_t i, uint64_t& bits) {
  if (k == FloatKind::f64) {
    bits = std::bit_cast<uint64_t>(static_cast<double>(i));
    return true;
  }
  return bits_from_float(k, static_cast<float>(i), bits);
}

bool float_bits_from_unsigned(FloatKind k, uint64_t u, uint64_t& bits) {
  if (k == FloatKind::f64) {
    bits = std::bit_cast<uint64_t>(static_cast<double>(u));
    return true;
  }
  return bits_from_float(k, static_cast<float>(u), bits);
}

}  // namespace ckpt_json
