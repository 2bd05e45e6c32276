// Numbers as JSON text, exact both ways. Floats are printed shortest-round-trip and always with
// '.' or 'e' so that a reader tells 1.0 from 1 (and -0.0 from 0). Values JSON has no number for
// are strings: "NaN", "Infinity", "-Infinity", and "NaN:0x<bits>" for any NaN other than the
// canonical positive quiet one, so that NaN payloads survive too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ckpt_json {

// The floating dtypes; values travel as their raw bits in the low bits of a uint64_t.
enum class FloatKind { f16, bf16, f32, f64, f8_e4m3fn, f8_e5m2 };

bool is_finite_bits(FloatKind k, uint64_t bits);

// A finite value as a JSON number, or a non-finite one as a quoted token.
void append_float_value(std::string& out, FloatKind k, uint64_t bits);
void append_double(std::string& out, double v);

// The token (unquoted) for a non-finite value.
std::string nonfinite_token(FloatKind k, uint64_t bits);
// Reads a non-finite token; false when `s` is not one for this kind.
bool parse_nonfinite(std::string_view s, FloatKind k, uint64_t& bits);

// Number text as JSON spells it, rounded to nearest; false when `s` is not a number or is out
// of the kind's range.
bool parse_float_text(std::string_view s, FloatKind k, uint64_t& bits);
// An integer token stored in a floating tensor (hand-written files); false on overflow.
bool float_bits_from_integer(FloatKind k, int64_t i, uint64_t& bits);
bool float_bits_from_unsigned(FloatKind k, uint64_t u, uint64_t& bits);

}  // namespace ckpt_json
