// Prefix scans over large text, 16 bytes per step with GCC vector extensions (plain SSE2 or
// NEON code, no intrinsics): finding where a multi-megabyte base64 string ends, and checking
// its alphabet, would otherwise dominate reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ckpt_json {

namespace scan_detail {
using v16 = signed char __attribute__((vector_size(16)));

inline v16 load16(const char* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline bool all_set(v16 m) {
  uint64_t a, b;
  std::memcpy(&a, &m, 8);
  std::memcpy(&b, reinterpret_cast<const char*>(&m) + 8, 8);
  return (a & b) == ~uint64_t{0};
}

// Printable ASCII without '"' and '\\': characters a JSON lexer copies verbatim.
inline bool is_plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }
inline v16 plain_mask(v16 c) {
  // Signed compare: bytes >= 0x80 are negative and fail "> 0x1F".
  return (c > 0x1F) & (c != '"') & (c != '\\');
}

inline bool is_base64(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}
inline v16 base64_mask(v16 c) {
  return ((c >= 'A') & (c <= 'Z')) | ((c >= 'a') & (c <= 'z')) | ((c >= '0') & (c <= '9')) | (c == '+') |
         (c == '/');
}

template <class Mask, class Scalar>
size_t prefix(const char* p, size_t n, Mask mask, Scalar scalar) {
  size_t i = 0;
  while (i + 16 <= n && all_set(mask(load16(p + i)))) i += 16;
  while (i < n && scalar(static_cast<unsigned char>(p[i]))) ++i;
  return i;
}
}  // namespace scan_detail

// Length of the longest prefix of [p, p+n) made of plain string characters.
inline size_t plain_prefix(const char* p, size_t n) {
  return scan_detail::prefix(p, n, scan_detail::plain_mask, scan_detail::is_plain);
}

// Length of the longest prefix made of base64 alphabet characters (no '=').
inline size_t base64_prefix(const char* p, size_t n) {
  return scan_detail::prefix(p, n, scan_detail::base64_mask, scan_detail::is_base64);
}

}  // namespace ckpt_json
