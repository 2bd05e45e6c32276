#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ckpt {

// Values match ckpt_dtype in plugin_abi.h.
enum class DType : uint8_t { f32 = 1, f64, f16, bf16, i8, u8, i16, i32, i64, boolean };

size_t itemsize(DType d);
std::string_view name(DType d);
// Throws UsageError for an unknown name.
DType dtype_from_name(std::string_view s);
bool is_floating(DType d);

// Half-precision conversions (round to nearest even), used by casts and number printing.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

}  // namespace ckpt

namespace ckpt {
// Element `i` of little-endian bytes of dtype `d`, as a double (i64 beyond 2^53 rounds).
double element_as_double(DType d, const std::byte* bytes, size_t i);
// Converts every element of `in` (dtype `from`) into `out` (dtype `to`), rounding to nearest.
void cast_elements(DType from, const std::byte* in, DType to, std::byte* out, size_t count);
}  // namespace ckpt
