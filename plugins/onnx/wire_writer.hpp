// Protobuf wire-format framing for the streaming writer: tags, varints and short fields
// appended to a byte string (protobuf's CodedOutputStream encodes the varints).
#pragma once

#include "onnx_layout.hpp"

#include <google/protobuf/io/coded_stream.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace ckpt_onnx::wire {

inline void put_varint(std::string& s, uint64_t v) {
  uint8_t buf[10];
  const uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(v, buf);
  s.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(end - buf));
}
inline void put_tag(std::string& s, uint32_t field, uint32_t type) { put_varint(s, tag(field, type)); }
inline void put_varint_field(std::string& s, uint32_t field, uint64_t v) {
  put_tag(s, field, kVarint);
  put_varint(s, v);
}
inline void put_bytes_field(std::string& s, uint32_t field, std::string_view bytes) {
  put_tag(s, field, kLength);
  put_varint(s, bytes.size());
  s.append(bytes);
}

// A length written in exactly five bytes (a varint may carry continuation bits on leading
// zero groups), so it can be reserved before the length is known and patched in place.
inline constexpr size_t kPaddedLength = 5;
inline std::string padded_length(uint32_t v) {
  std::string s(kPaddedLength, '\0');
  for (size_t k = 0; k < kPaddedLength; ++k) {
    const auto group = static_cast<uint8_t>((v >> (7 * k)) & 0x7f);
    s[k] = static_cast<char>(k + 1 < kPaddedLength ? group | 0x80 : group);
  }
  return s;
}

}  // namespace ckpt_onnx::wire
