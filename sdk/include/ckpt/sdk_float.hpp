// The small floating-point formats as bits: IEEE half, bfloat16 and the two OCP 8-bit floats.
// Header-only so that the host and every plugin convert them the same way. Conversions from
// float round to nearest, ties to even.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace ckpt::sdk {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t e = (h >> 10) & 0x1F;
  const uint32_t m = h & 0x3FF;
  if (e == 0) {
    const float v = static_cast<float>(m) * 0x1p-24f;  // exact: m < 2^10
    return sign ? -v : v;
  }
  const uint32_t bits = e == 31 ? (sign | 0x7F800000u | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
  return std::bit_cast<float>(bits);
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t a = x & 0x7FFFFFFF;
  if (a > 0x7F800000) return static_cast<uint16_t>(sign | 0x7E00 | ((a >> 13) & 0x3FF));  // keeps the payload's top
  if (a >= 0x477FF000) return sign | 0x7C00;  // 65520 and up round to infinity
  if (a >= 0x38800000) {                      // normal in f16
    const uint32_t m = a - 0x38000000;        // rebias the exponent from 127 to 15
    return static_cast<uint16_t>(sign | ((m + 0xFFF + ((m >> 13) & 1)) >> 13));
  }
  const uint32_t e = a >> 23;
  if (e < 102) return sign;  // below half the smallest subnormal: rounds to zero
  const uint32_t mant = (a & 0x7FFFFF) | 0x800000;
  const uint32_t shift = 126 - e;  // 14..24
  uint32_t r = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1))) ++r;
  return static_cast<uint16_t>(sign | r);
}

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

namespace detail {
// |a| rounded to a binary float with `mbits` mantissa bits and exponent bias `bias`, encoded
// without its sign; -1 when the rounded value exceeds `max`.
inline int encode_small_float(double a, int mbits, int bias, double max) {
  if (a == 0) return 0;
  const int min_exp = 1 - bias;
  int e = 0;
  std::frexp(a, &e);
  const int ex = std::max(e - 1, min_exp);
  const double q = std::nearbyint(std::ldexp(a, mbits - ex));  // scaling by 2^k is exact
  const double rounded = std::ldexp(q, ex - mbits);
  if (rounded > max) return -1;
  if (rounded == 0) return 0;  // below half the smallest subnormal
  std::frexp(rounded, &e);
  if (e - 1 < min_exp) return static_cast<int>(q);  // subnormal
  const int m = static_cast<int>(std::ldexp(rounded, mbits - (e - 1))) - (1 << mbits);
  return ((e - 1 + bias) << mbits) | m;
}
}  // namespace detail

// float8_e4m3fn: 1-4-3, bias 7, no infinities, one NaN per sign (S.1111.111), largest 448.
// Overflow and infinities become NaN, as torch casts them.
inline float f8_e4m3fn_to_f32(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exp = (b >> 3) & 0xF, mant = b & 7;
  if (exp == 0xF && mant == 7) return std::copysign(std::numeric_limits<float>::quiet_NaN(), sign);
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(static_cast<float>(8 + mant), exp - 10);
}

inline uint8_t f32_to_f8_e4m3fn(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (!std::isfinite(f)) return sign | 0x7F;
  const int code = detail::encode_small_float(std::fabs(static_cast<double>(f)), 3, 7, 448.0);
  return static_cast<uint8_t>(sign | (code < 0 ? 0x7F : code));
}

// float8_e5m2: 1-5-2, bias 15, IEEE-like: the top byte of an f16. Overflow is infinity.
inline float f8_e5m2_to_f32(uint8_t b) { return f16_to_f32(static_cast<uint16_t>(b << 8)); }

inline uint8_t f32_to_f8_e5m2(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | 0x7E;
  if (std::isinf(f)) return sign | 0x7C;
  const int code = detail::encode_small_float(std::fabs(static_cast<double>(f)), 2, 15, 57344.0);
  return static_cast<uint8_t>(sign | (code < 0 ? 0x7C : code));
}

}  // namespace ckpt::sdk
