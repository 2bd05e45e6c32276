// Standard base64 (RFC 4648, '+' '/', '=' padding) for tensor bytes. Table driven and
// branch-light because a large state dict is mostly this text.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace ckpt_json {

constexpr size_t base64_encoded_size(size_t n) { return (n + 2) / 3 * 4; }

// Writes exactly base64_encoded_size(in.size()) characters to `out`.
void base64_encode(std::span<const std::byte> in, char* out);

// What base64_check found. `error` is null for well-formed padded base64 (unused low bits of
// the last group are ignored, as Python does); otherwise it says what is wrong at
// `error_offset`, an index into the text.
struct Base64Check {
  size_t decoded_size = 0;
  size_t error_offset = 0;
  const char* error = nullptr;
};

// Validates every character, the length and the padding without decoding.
Base64Check base64_check(std::string_view text);

// Decodes text that passed base64_check into exactly its decoded_size bytes.
void base64_decode(std::string_view text, std::byte* out);

}  // namespace ckpt_json
