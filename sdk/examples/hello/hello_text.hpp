// The text pieces of the hello format, shared by its writer and reader: netstrings for names
// and strings (any bytes, no escaping), hex for float bits and tensor bytes, and a cursor that
// reads them with every length checked against what is left of the file.
#pragma once

#include <ckpt/sdk.hpp>

#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace hello {

inline constexpr std::string_view kMagic = "hello-ckpt ";
inline constexpr std::string_view kHeader = "hello-ckpt 1\n";

inline constexpr char kHexDigits[] = "0123456789abcdef";

// 0..15, or -1 for anything that is not a lower-case hex digit (the writer never emits upper
// case, so a reader accepting it would accept a flipped bit).
inline int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<length>:<bytes>"
inline std::string netstring(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }

inline std::string hex64(uint64_t bits) {
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, bits >>= 4) out[static_cast<size_t>(i)] = kHexDigits[bits & 15];
  return out;
}

class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, std::string path) : b_(bytes), path_(std::move(path)) {}

  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  bool at_end() const { return pos_ == b_.size(); }

  [[noreturn]] void bad(const std::string& what) const {
    ckpt::sdk::fail(CKPT_ERR_FORMAT, "'" + path_ + "' at byte " + std::to_string(pos_) + ": " + what);
  }
  void need(uint64_t n, std::string_view what) const {
    if (n > left())
      bad(std::string(what) + " needs " + std::to_string(n) + " bytes, only " + std::to_string(left()) + " are left");
  }
  char next(std::string_view what) {
    need(1, what);
    return static_cast<char>(b_[pos_++]);
  }
  void expect(char c, std::string_view what) {
    if (next(what) != c) {
      --pos_;
      bad("expected '" + std::string(c == '\n' ? "\\n" : std::string(1, c)) + "' " + std::string(what));
    }
  }
  std::string_view take(uint64_t n, std::string_view what) {
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(b_.data()) + pos_, n);
    pos_ += n;
    return s;
  }
  // The characters up to (not including) the next space or newline.
  std::string_view word(std::string_view what) {
    size_t end = pos_;
    while (end < b_.size() && b_[end] != std::byte{' '} && b_[end] != std::byte{'\n'}) ++end;
    if (end == pos_) bad("missing " + std::string(what));
    return take(end - pos_, what);
  }
  template <class Int>
  Int number(std::string_view what) {
    std::string_view w = word(what);
    Int v{};
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
    if (ec != std::errc() || p != w.data() + w.size()) bad("'" + std::string(w) + "' is not a valid " + std::string(what));
    return v;
  }
  std::string netstring(std::string_view what) {
    size_t digits = 0;
    uint64_t n = 0;
    while (pos_ + digits < b_.size() && digits < 19) {
      int d = static_cast<int>(b_[pos_ + digits]) - '0';
      if (d < 0 || d > 9) break;
      n = n * 10 + static_cast<uint64_t>(d);
      ++digits;
    }
    if (digits == 0) bad("expected the length of " + std::string(what));
    pos_ += digits;
    expect(':', "after the length of " + std::string(what));
    return std::string(take(n, what));
  }
  uint64_t hex64(std::string_view what) {
    std::string_view w = take(16, what);
    uint64_t bits = 0;
    for (char c : w) {
      int v = hex_value(static_cast<unsigned char>(c));
      if (v < 0) bad(std::string(what) + " is not 16 hex digits");
      bits = bits << 4 | static_cast<uint64_t>(v);
    }
    return bits;
  }

 private:
  std::span<const std::byte> b_;
  std::string path_;
  size_t pos_ = 0;
};

}  // namespace hello
