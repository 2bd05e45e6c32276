#include "doc_text.hpp"

#include <ckpt/sdk_value.hpp>

#include <algorithm>
#include <cstring>

namespace ckpt_doc {
namespace {

// Bytes in the well-formed UTF-8 character starting at s[i], or 0.
size_t char_length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len <= 1 || s.size() - i < len) return len == 1 ? 1 : 0;
  return ckpt::sdk::valid_utf8(s.substr(i, len)) ? len : 0;
}

void append_hex(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 15]);
}

// Appends s[i], one character or one byte that is none, escaped as quote_text says; returns
// the bytes of `s` it took.
size_t append_one(std::string& out, std::string_view s, size_t i, char quote) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = char_length(s, i);
  if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7f || c == '\\' || (quote && c == static_cast<unsigned char>(quote))))) {
    append_hex(out, c);
    return 1;
  }
  // U+0080..U+009F: some terminals take U+009B for CSI, as they take ESC [.
  if (len == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
    append_hex(out, c);
    append_hex(out, static_cast<unsigned char>(s[i + 1]));
    return 2;
  }
  out.append(s.data() + i, len);
  return len;
}

}  // namespace

std::optional<NameFault> name_fault(std::string_view name) {
  if (name.empty()) return NameFault::empty;
  if (name.find('/') != std::string_view::npos) return NameFault::slash;
  if (name.find('\0') != std::string_view::npos) return NameFault::nul;
  if (!ckpt::sdk::valid_utf8(name)) return NameFault::utf8;
  return std::nullopt;
}

const char* name_fault_text(NameFault f) {
  switch (f) {
    case NameFault::empty: return "is empty";
    case NameFault::slash: return "contains '/'";
    case NameFault::nul: return "contains a NUL character";
    case NameFault::utf8: return "is not valid UTF-8";
  }
  return "is not a valid name";
}

std::string quote_text(std::string_view s, char quote, size_t limit) {
  std::string out(1, quote);
  size_t i = 0;
  while (i < s.size()) {
    if (i + std::max<size_t>(char_length(s, i), 1) > limit) break;
    i += append_one(out, s, i, quote);
  }
  if (i < s.size()) out += "...";
  out.push_back(quote);
  return out;
}

void append_escaped(std::string& out, std::string_view s) {
  for (size_t i = 0; i < s.size();) i += append_one(out, s, i, 0);
}


}  // namespace ckpt_doc
