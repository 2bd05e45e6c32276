#include <ckpt/dtype.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/sdk_float.hpp>
#include <ckpt/sdk_ggml.hpp>

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
    case DType::c128:
      return 16;
    case DType::f64:
    case DType::i64:
    case DType::u64:
    case DType::c64:
      return 8;
    case DType::f32:
    case DType::i32:
    case DType::u32:
      return 4;
    case DType::f16:
    case DType::bf16:
    case DType::i16:
    case DType::u16:
      return 2;
    case DType::i8:
    case DType::u8:
    case DType::boolean:
    case DType::f8_e4m3fn:
    case DType::f8_e5m2:
      return 1;
    default:
      break;
  }
  throw UsageError("a " + std::string(name(d)) + " tensor has no bytes per element: its rows are blocks of " +
                   std::to_string(block_elements(d)) + " elements in " + std::to_string(block_bytes(d)) + " bytes");
}

bool is_block(DType d) { return sdk::is_block_dtype(static_cast<uint32_t>(d)); }
size_t block_elements(DType d) { return is_block(d) ? sdk::dtype_block(static_cast<uint32_t>(d)).elements : 1; }
size_t block_bytes(DType d) { return is_block(d) ? sdk::dtype_block(static_cast<uint32_t>(d)).bytes : itemsize(d); }
uint64_t storage_bytes(DType d, uint64_t numel) {
  // A tensor's numel is bounded when it is made, but callers also pass counts of their own:
  // the product is checked so that it can never wrap to a small size.
  uint64_t bytes = 0;
  if (!is_block(d)) {
    if (__builtin_mul_overflow(numel, uint64_t{itemsize(d)}, &bytes))
      throw UsageError(std::to_string(numel) + " elements of " + std::string(name(d)) + " overflow 64 bits of bytes");
    return bytes;
  }
  if (numel % block_elements(d))
    throw UsageError(std::to_string(numel) + " elements of " + std::string(name(d)) + " are not whole blocks of " +
                     std::to_string(block_elements(d)));
  if (__builtin_mul_overflow(numel / block_elements(d), uint64_t{block_bytes(d)}, &bytes))
    throw UsageError(std::to_string(numel) + " elements of " + std::string(name(d)) + " overflow 64 bits of bytes");
  return bytes;
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
    case DType::u16: return "u16";
    case DType::u32: return "u32";
    case DType::u64: return "u64";
    case DType::f8_e4m3fn: return "f8_e4m3fn";
    case DType::f8_e5m2: return "f8_e5m2";
    case DType::c64: return "c64";
    case DType::c128: return "c128";
    default: break;
  }
  const char* n = sdk::dtype_name(static_cast<uint32_t>(d));
  return n ? n : "?";
}

DType dtype_from_name(std::string_view s) {
  std::string known;
  for (int d = static_cast<int>(kFirstDType); d <= static_cast<int>(kLastDType); ++d) {
    if (name(static_cast<DType>(d)) == s) return static_cast<DType>(d);
    known += (known.empty() ? "" : ", ") + std::string(name(static_cast<DType>(d)));
  }
  throw UsageError("unknown dtype '" + std::string(s) + "' (known: " + known + ")");
}

bool is_floating(DType d) {
  switch (d) {
    case DType::f32:
    case DType::f64:
    case DType::f16:
    case DType::bf16:
    case DType::f8_e4m3fn:
    case DType::f8_e5m2:
      return true;
    default:
      return false;
  }
}

bool is_complex(DType d) { return d == DType::c64 || d == DType::c128; }

DType component(DType d) {
  if (d == DType::c64) return DType::f32;
  if (d == DType::c128) return DType::f64;
  return d;
}

float f16_to_f32(uint16_t h) { return sdk::f16_to_f32(h); }
uint16_t f32_to_f16(float f) { return sdk::f32_to_f16(f); }
float bf16_to_f32(uint16_t h) { return sdk::bf16_to_f32(h); }
uint16_t f32_to_bf16(float f) { return sdk::f32_to_bf16(f); }
float f8_e4m3fn_to_f32(uint8_t b) { return sdk::f8_e4m3fn_to_f32(b); }
uint8_t f32_to_f8_e4m3fn(float f) { return sdk::f32_to_f8_e4m3fn(f); }
float f8_e5m2_to_f32(uint8_t b) { return sdk::f8_e5m2_to_f32(b); }
uint8_t f32_to_f8_e5m2(float f) { return sdk::f32_to_f8_e5m2(f); }

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
  if (is_block(d)) {
    // The block holding element i, decoded.
    float values[256];
    const size_t n = block_elements(d);
    sdk::ggml::dequantize(static_cast<uint32_t>(d), p + i / n * block_bytes(d), values, 1);
    return values[i % n];
  }
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
    case DType::u16: return load<uint16_t>(p, i);
    case DType::u32: return load<uint32_t>(p, i);
    case DType::u64: return static_cast<double>(load<uint64_t>(p, i));
    case DType::f8_e4m3fn: return f8_e4m3fn_to_f32(load<uint8_t>(p, i));
    case DType::f8_e5m2: return f8_e5m2_to_f32(load<uint8_t>(p, i));
    case DType::c64: return load<float>(p, i);
    case DType::c128: return load<double>(p, i);
    default: return 0;
  }
}

namespace {

bool is_integral(DType d) {
  switch (d) {
    case DType::i8:
    case DType::u8:
    case DType::i16:
    case DType::i32:
    case DType::i64:
    case DType::u16:
    case DType::u32:
    case DType::u64:
    case DType::boolean:
      return true;
    default:
      return false;
  }
}

__int128 load_integer(DType d, const std::byte* p, size_t i) {
  switch (d) {
    case DType::i8: return load<int8_t>(p, i);
    case DType::u8: return load<uint8_t>(p, i);
    case DType::i16: return load<int16_t>(p, i);
    case DType::i32: return load<int32_t>(p, i);
    case DType::i64: return load<int64_t>(p, i);
    case DType::u16: return load<uint16_t>(p, i);
    case DType::u32: return load<uint32_t>(p, i);
    case DType::u64: return load<uint64_t>(p, i);
    case DType::boolean: return load<uint8_t>(p, i) != 0;
    default: return 0;
  }
}

template <class T>
T clamp_integer(__int128 v) {
  return static_cast<T>(std::clamp<__int128>(v, std::numeric_limits<T>::lowest(), std::numeric_limits<T>::max()));
}

void store_integer(DType d, std::byte* p, size_t i, __int128 v) {
  switch (d) {
    case DType::i8: store(p, i, clamp_integer<int8_t>(v)); break;
    case DType::u8: store(p, i, clamp_integer<uint8_t>(v)); break;
    case DType::i16: store(p, i, clamp_integer<int16_t>(v)); break;
    case DType::i32: store(p, i, clamp_integer<int32_t>(v)); break;
    case DType::i64: store(p, i, clamp_integer<int64_t>(v)); break;
    case DType::u16: store(p, i, clamp_integer<uint16_t>(v)); break;
    case DType::u32: store(p, i, clamp_integer<uint32_t>(v)); break;
    case DType::u64: store(p, i, clamp_integer<uint64_t>(v)); break;
    case DType::boolean: store(p, i, static_cast<uint8_t>(v != 0)); break;
    default: break;
  }
}

// Stores `x` as element `i` of a real (non-complex) dtype.
void store_real(DType d, std::byte* out, size_t i, double x) {
  switch (d) {
    case DType::f32: store(out, i, static_cast<float>(x)); break;
    case DType::f64: store(out, i, x); break;
    case DType::f16: store(out, i, f32_to_f16(static_cast<float>(x))); break;
    case DType::bf16: store(out, i, f32_to_bf16(static_cast<float>(x))); break;
    case DType::f8_e4m3fn: store(out, i, f32_to_f8_e4m3fn(static_cast<float>(x))); break;
    case DType::f8_e5m2: store(out, i, f32_to_f8_e5m2(static_cast<float>(x))); break;
    case DType::i8: store(out, i, saturate<int8_t>(x)); break;
    case DType::u8: store(out, i, saturate<uint8_t>(x)); break;
    case DType::i16: store(out, i, saturate<int16_t>(x)); break;
    case DType::i32: store(out, i, saturate<int32_t>(x)); break;
    case DType::i64: store(out, i, saturate<int64_t>(x)); break;
    case DType::u16: store(out, i, saturate<uint16_t>(x)); break;
    case DType::u32: store(out, i, saturate<uint32_t>(x)); break;
    case DType::u64: store(out, i, saturate<uint64_t>(x)); break;
    case DType::boolean: store(out, i, static_cast<uint8_t>(x != 0)); break;
    default: break;
  }
}

}  // namespace

namespace {

// Block dtypes go through f32, a chunk at a time: the larger of the two blocks (256 is a
// multiple of 32), so a block dtype can be cast into another.
void cast_blocks(DType from, const std::byte* in, DType to, std::byte* out, size_t count) {
  const size_t chunk = std::max(block_elements(from), block_elements(to));
  if (count % chunk)
    throw UsageError("a cast of " + std::to_string(count) + " elements from " + std::string(name(from)) + " to " +
                     std::string(name(to)) + ": not whole blocks of " + std::to_string(chunk));
  if (is_block(to) && !sdk::ggml::can_quantize(static_cast<uint32_t>(to)))
    throw UsageError("ckpt quantizes into q8_0, q4_0 and q4_k, not " + std::string(name(to)));
  if (is_block(to) && is_complex(from)) throw UsageError("a complex tensor is not quantized into " + std::string(name(to)));
  float values[256];
  for (size_t i = 0; i < count; i += chunk) {
    const std::byte* src = in + storage_bytes(from, i);
    std::byte* dst = out + storage_bytes(to, i);
    if (is_block(from)) sdk::ggml::dequantize(static_cast<uint32_t>(from), src, values, chunk / block_elements(from));
    else cast_elements(from, src, DType::f32, reinterpret_cast<std::byte*>(values), chunk);
    if (!is_block(to)) {
      cast_elements(DType::f32, reinterpret_cast<const std::byte*>(values), to, dst, chunk);
      continue;
    }
    for (size_t k = 0; k < chunk; ++k)
      if (!std::isfinite(values[k]))
        throw UsageError("element " + std::to_string(i + k) + " is " + std::to_string(values[k]) + ", which " +
                         std::string(name(to)) + " cannot hold");
    sdk::ggml::quantize(static_cast<uint32_t>(to), values, dst, chunk / block_elements(to));
  }
}

}  // namespace

void cast_elements(DType from, const std::byte* in, DType to, std::byte* out, size_t count) {
  if (from == to) {
    std::memcpy(out, in, storage_bytes(from, count));
    return;
  }
  if (is_block(from) || is_block(to)) return cast_blocks(from, in, to, out, count);
  const bool cin = is_complex(from), cout = is_complex(to);
  for (size_t i = 0; i < count; ++i) {
    if (is_integral(from) && is_integral(to)) {
      // Without a detour through double, which would round above 2^53.
      store_integer(to, out, i, load_integer(from, in, i));
    } else if (cout) {
      const double re = element_as_double(from, in, cin ? 2 * i : i);
      const double im = cin ? element_as_double(from, in, 2 * i + 1) : 0.0;
      store_real(component(to), out, 2 * i, re);
      store_real(component(to), out, 2 * i + 1, im);
    } else {
      store_real(to, out, i, element_as_double(from, in, cin ? 2 * i : i));
    }
  }
}

}  // namespace ckpt
