#include <ckpt/dtype.hpp>
#include <ckpt/errors.hpp>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <cstring>
#include <string>

namespace ckpt {

size_t itemsize(DType d) {
  switch (d) {
    case DType::f64:
    case DType::i64:
      return 8;
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::f16:
    case DType::bf16:
    case DType::i16:
      return 2;
    case DType::i8:
    case DType::u8:
    case DType::boolean:
      return 1;
  }
  return 0;
}

std::string_view name(DType d) {
  switch (d) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::i16: return "i16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::boolean: return "bool";
  }
  return "?";
}

DType dtype_from_name(std::string_view s) {
  for (int d = 1; d <= 10; ++d)
    if (name(static_cast<DType>(d)) == s) return static_cast<DType>(d);
  throw UsageError("unknown dtype '" + std::string(s) +
                   "' (known: f32, f64, f16, bf16, i8, u8, i16, i32, i64, bool)");
}

bool is_floating(DType d) {
  return d == DType::f32 || d == DType::f64 || d == DType::f16 || d == DType::bf16;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(half);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace ckpt

namespace ckpt {

namespace {
template <class T>
T load(const std::byte* p, size_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}
template <class T>
void store(std::byte* p, size_t i, T v) {
  std::memcpy(p + i * sizeof(T), &v, sizeof(T));
}
template <class T>
T saturate(double x) {
  if (x != x) return 0;
  if (x <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (x >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(std::nearbyint(x));
}
}  // namespace

double element_as_double(DType d, const std::byte* p, size_t i) {
  switch (d) {
    case DType::f32: return load<float>(p, i);
    case DType::f64: return load<double>(p, i);
    case DType::f16: return f16_to_f32(load<uint16_t>(p, i));
    case DType::bf16: return bf16_to_f32(load<uint16_t>(p, i));
    case DType::i8: return load<int8_t>(p, i);
    case DType::u8: return load<uint8_t>(p, i);
    case DType::i16: return load<int16_t>(p, i);
    case DType::i32: return load<int32_t>(p, i);
    case DType::i64: return static_cast<double>(load<int64_t>(p, i));
    case DType::boolean: return load<uint8_t>(p, i) ? 1.0 : 0.0;
  }
  return 0;
}

void cast_elements(DType from, const std::byte* in, DType to, std::byte* out, size_t count) {
  if (from == to) {
    std::memcpy(out, in, count * itemsize(from));
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    if (from == DType::i64 && to != DType::f32 && to != DType::f64 && to != DType::f16 && to != DType::bf16) {
      // Integer to integer without a detour through double, which would round above 2^53.
      int64_t v = load<int64_t>(in, i);
      switch (to) {
        case DType::i8: store(out, i, static_cast<int8_t>(std::clamp<int64_t>(v, INT8_MIN, INT8_MAX))); break;
        case DType::u8: store(out, i, static_cast<uint8_t>(std::clamp<int64_t>(v, 0, UINT8_MAX))); break;
        case DType::i16: store(out, i, static_cast<int16_t>(std::clamp<int64_t>(v, INT16_MIN, INT16_MAX))); break;
        case DType::i32: store(out, i, static_cast<int32_t>(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX))); break;
        case DType::boolean: store(out, i, static_cast<uint8_t>(v != 0)); break;
        default: break;
      }
      continue;
    }
    double x = element_as_double(from, in, i);
    switch (to) {
      case DType::f32: store(out, i, static_cast<float>(x)); break;
      case DType::f64: store(out, i, x); break;
      case DType::f16: store(out, i, f32_to_f16(static_cast<float>(x))); break;
      case DType::bf16: store(out, i, f32_to_bf16(static_cast<float>(x))); break;
      case DType::i8: store(out, i, saturate<int8_t>(x)); break;
      case DType::u8: store(out, i, saturate<uint8_t>(x)); break;
      case DType::i16: store(out, i, saturate<int16_t>(x)); break;
      case DType::i32: store(out, i, saturate<int32_t>(x)); break;
      case DType::i64: store(out, i, saturate<int64_t>(x)); break;
      case DType::boolean: store(out, i, static_cast<uint8_t>(x != 0)); break;
    }
  }
}

}  // namespace ckpt
