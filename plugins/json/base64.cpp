#include "base64.hpp"

#include "text_scan.hpp"

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ckpt_json {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint32_t kInvalid = 0x01000000u;

// Two output characters per 12 input bits: one lookup does half of a 3-byte group.
constexpr std::array<uint16_t, 4096> make_pair_table() {
  std::array<uint16_t, 4096> t{};
  for (uint32_t i = 0; i < 4096; ++i) {
    auto hi = static_cast<uint8_t>(kAlphabet[i >> 6]);
    auto lo = static_cast<uint8_t>(kAlphabet[i & 63]);
    // Stored in memory order (first char at the lower address) on little-endian hosts.
    t[i] = static_cast<uint16_t>(hi | (lo << 8));
  }
  return t;
}
constexpr auto kPairs = make_pair_table();

// One table per position in a 4-character group, pre-shifted so a group decodes with three
// ORs; an invalid character sets a bit above the 24 data bits.
constexpr std::array<std::array<uint32_t, 256>, 4> make_decode_tables() {
  std::array<std::array<uint32_t, 256>, 4> t{};
  for (auto& row : t) row.fill(kInvalid);
  for (uint32_t v = 0; v < 64; ++v) {
    auto c = static_cast<uint8_t>(kAlphabet[v]);
    t[0][c] = v << 18;
    t[1][c] = v << 12;
    t[2][c] = v << 6;
    t[3][c] = v;
  }
  return t;
}
constexpr auto kDecode = make_decode_tables();

inline uint32_t group_bits(const unsigned char* s) {
  return kDecode[0][s[0]] | kDecode[1][s[1]] | kDecode[2][s[2]] | kDecode[3][s[3]];
}

#if defined(__x86_64__)
// Twelve input bytes to sixteen characters in SSE registers (Wojciech Mula's method, as in
// aklomp/base64): a shuffle puts each 3-byte group in a 32-bit lane, two multiplies move the
// four 6-bit fields to byte boundaries, and a 16-entry shuffle table adds each field's offset
// into the alphabet. SSSE3 is not in the x86-64 baseline, hence the target attribute and the
// check at run time. Reads 16 bytes for every 12 it encodes.
__attribute__((target("ssse3"))) size_t encode_ssse3(const unsigned char* p, size_t n, char*& out) {
  const __m128i gather = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
  const __m128i offsets = _mm_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
  size_t i = 0;
  for (; i + 16 <= n; i += 12) {
    __m128i in = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), gather);
    const __m128i hi = _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0FC0FC00)), _mm_set1_epi32(0x04000040));
    const __m128i lo = _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003F03F0)), _mm_set1_epi32(0x01000010));
    const __m128i v = _mm_or_si128(hi, lo);
    // 0-25 -> table 0, 26-51 -> 1, 52-61 -> 2-11, 62 -> 12, 63 -> 13.
    __m128i idx = _mm_subs_epu8(v, _mm_set1_epi8(51));
    idx = _mm_sub_epi8(idx, _mm_cmpgt_epi8(v, _mm_set1_epi8(25)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_add_epi8(v, _mm_shuffle_epi8(offsets, idx)));
    out += 16;
  }
  return i;
}

bool have_ssse3() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3") != 0;
  }();
  return have;
}
#endif

}  // namespace

void base64_encode(std::span<const std::byte> in, char* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  size_t full = n / 3 * 3;
  size_t i = 0;
#if defined(__x86_64__)
  if (have_ssse3()) i = encode_ssse3(p, full, out);
#endif
  // Twelve input bytes per round from two 8-byte big-endian loads (each using its first six):
  // a third of the loads of the 3-byte loop below, and four independent lookups per load.
  auto six = [](const unsigned char* q, char* o) {
    uint64_t w;
    std::memcpy(&w, q, 8);
    const uint64_t a = __builtin_bswap64(w) >> 16;
    std::memcpy(o, &kPairs[(a >> 36) & 0xfff], 2);
    std::memcpy(o + 2, &kPairs[(a >> 24) & 0xfff], 2);
    std::memcpy(o + 4, &kPairs[(a >> 12) & 0xfff], 2);
    std::memcpy(o + 6, &kPairs[a & 0xfff], 2);
  };
  for (; i + 14 <= full; i += 12) {
    six(p + i, out);
    six(p + i + 6, out + 8);
    out += 16;
  }
  for (; i < full; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    std::memcpy(out, &kPairs[v >> 12], 2);
    std::memcpy(out + 2, &kPairs[v & 0xfff], 2);
    out += 4;
  }
  size_t rest = n - full;
  if (rest == 0) return;
  uint32_t v = uint32_t{p[i]} << 16;
  if (rest == 2) v |= uint32_t{p[i + 1]} << 8;
  out[0] = kAlphabet[(v >> 18) & 63];
  out[1] = kAlphabet[(v >> 12) & 63];
  out[2] = rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
  out[3] = '=';
}

Base64Check base64_check(std::string_view text) {
  Base64Check r;
  size_t n = text.size();
  if (n % 4 != 0) {
    r.error_offset = n;
    r.error = "base64 length is not a multiple of 4";
    return r;
  }
  if (n == 0) return r;
  size_t pad = text[n - 1] == '=' ? (text[n - 2] == '=' ? 2 : 1) : 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = base64_prefix(text.data(), n - pad); i < n; ++i) {
    bool last_pad = i >= n - pad;
    if (last_pad ? s[i] != '=' : (kDecode[0][s[i]] & kInvalid) != 0) {
      r.error_offset = i;
      r.error = s[i] == '=' ? "base64 padding '=' before the end" : "invalid base64 character";
      return r;
    }
  }
  r.decoded_size = n / 4 * 3 - pad;
  return r;
}

void base64_decode(std::string_view text, std::byte* out) {
  size_t n = text.size();
  if (n == 0) return;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  auto* o = reinterpret_cast<unsigned char*>(out);
  size_t body = n - 4;
  for (size_t i = 0; i < body; i += 4) {
    uint32_t v = group_bits(s + i);
    o[0] = static_cast<unsigned char>(v >> 16);
    o[1] = static_cast<unsigned char>(v >> 8);
    o[2] = static_cast<unsigned char>(v);
    o += 3;
  }
  const unsigned char* t = s + body;
  uint32_t v = kDecode[0][t[0]] | kDecode[1][t[1]];
  o[0] = static_cast<unsigned char>(v >> 16);
  if (t[2] == '=') return;
  v |= kDecode[2][t[2]];
  o[1] = static_cast<unsigned char>(v >> 8);
  if (t[3] == '=') return;
  v |= kDecode[3][t[3]];
  o[2] = static_cast<unsigned char>(v);
}

}  // namespace ckpt_json
