#include "json_numbers.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace ckpt::jsonfmt {
namespace {

struct KindInfo {
  unsigned width;        // bits
  uint64_t exp_mask;     // all exponent bits
  uint64_t mant_mask;
  uint64_t canonical_nan;
};

KindInfo info(FloatKind k) {
  switch (k) {
    case FloatKind::f16: return {16, 0x7C00, 0x03FF, 0x7E00};
    case FloatKind::bf16: return {16, 0x7F80, 0x007F, 0x7FC0};
    case FloatKind::f32: return {32, 0x7F800000, 0x007FFFFF, 0x7FC00000};
    case FloatKind::f64: break;
  }
  return {64, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF, 0x7FF8000000000000};
}

bool is_nan_bits(const KindInfo& ki, uint64_t bits) {
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
    default: bits = std::bit_cast<uint32_t>(f); break;
  }
  return is_finite_bits(k, bits);
}

}  // namespace

bool is_finite_bits(FloatKind k, uint64_t bits) {
  KindInfo ki = info(k);
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
  if (s == "Infinity" || s == "-Infinity") {
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

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t{h & 0x8000u} << 16;
  uint32_t e = (h >> 10) & 0x1F;
  uint32_t m = h & 0x3FF;
  if (e == 0) {
    float v = static_cast<float>(m) * 0x1p-24f;  // exact: m < 2^10
    return sign ? -v : v;
  }
  uint32_t bits = e == 31 ? (sign | 0x7F800000u | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t a = x & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7E00;
  if (a >= 0x477FF000) return sign | 0x7C00;  // 65520 and up round to infinity
  if (a >= 0x38800000) {                      // normal in f16
    uint32_t m = a - 0x38000000;              // rebias the exponent from 127 to 15
    return static_cast<uint16_t>(sign | ((m + 0xFFF + ((m >> 13) & 1)) >> 13));
  }
  uint32_t e = a >> 23;
  if (e < 102) return sign;  // below half the smallest subnormal: rounds to zero
  uint32_t mant = (a & 0x7FFFFF) | 0x800000;
  uint32_t shift = 126 - e;  // 14..24
  uint32_t r = mant >> shift;
  uint32_t rem = mant & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1))) ++r;
  return static_cast<uint16_t>(sign | r);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

}  // namespace ckpt::jsonfmt
