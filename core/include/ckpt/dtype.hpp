#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ckpt {

// Values match ckpt_dtype in plugin_abi.h (append-only).
enum class DType : uint8_t {
  f32 = 1, f64, f16, bf16, i8, u8, i16, i32, i64, boolean,
  u16, u32, u64, f8_e4m3fn, f8_e5m2, c64, c128,
  // ggml's block-quantized dtypes (GGUF): each row is a run of blocks (block_elements(d)
  // elements in block_bytes(d) bytes), so the last dimension is a multiple of the block.
  q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k
};
inline constexpr DType kFirstDType = DType::f32;
inline constexpr DType kLastDType = DType::q6_k;
// The dtypes of whole elements (f32 to c128): any shape holds them.
inline constexpr DType kLastElementDType = DType::c128;

// Bytes per element; a block dtype has none (UsageError): see block_elements.
size_t itemsize(DType d);
bool is_block(DType d);
// The unit of storage: block_elements(d) consecutive elements of a row in block_bytes(d)
// bytes (1 and itemsize(d) for element dtypes).
size_t block_elements(DType d);
size_t block_bytes(DType d);
// Bytes of `numel` elements, which for a block dtype are whole blocks.
uint64_t storage_bytes(DType d, uint64_t numel);
std::string_view name(DType d);
// Throws UsageError for an unknown name.
DType dtype_from_name(std::string_view s);
// Real floating point: f8 to f64. Complex dtypes are neither floating nor integral.
bool is_floating(DType d);
bool is_complex(DType d);
// The real dtype of each half of a complex element (c64 -> f32); `d` itself otherwise.
DType component(DType d);

// Half-precision conversions (round to nearest even), used by casts and number printing.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
// OCP 8-bit floats. e4m3fn has no infinities: values past 448 and infinities become NaN, as
// torch casts them; e5m2 overflows to infinity like any IEEE format.
float f8_e4m3fn_to_f32(uint8_t b);
uint8_t f32_to_f8_e4m3fn(float f);
float f8_e5m2_to_f32(uint8_t b);
uint8_t f32_to_f8_e5m2(float f);

}  // namespace ckpt

namespace ckpt {
// Element `i` of little-endian bytes of dtype `d`, as a double (64-bit integers beyond 2^53
// round). For a complex dtype, `i` counts components: element k is components 2k and 2k+1.
double element_as_double(DType d, const std::byte* bytes, size_t i);
// Converts every element of `in` (dtype `from`) into `out` (dtype `to`), rounding to nearest
// and saturating integers. Complex to real keeps the real part; real to complex adds a zero
// imaginary part. A block dtype is decoded as ggml decodes it (exact in f32); encoding into one
// (q8_0, q4_0, q4_k) quantizes whole blocks of `count` (a multiple of the block) finite reals.
void cast_elements(DType from, const std::byte* in, DType to, std::byte* out, size_t count);
}  // namespace ckpt
