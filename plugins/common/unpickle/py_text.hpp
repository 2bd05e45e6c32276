// Document strings in Python's str. A str in a pickle is UTF-8 in which lone surrogates may
// appear (Python's "surrogatepass"), and nothing else: a document string, which may hold any
// bytes, cannot always be one. So the bytes that are not strict UTF-8 travel as the lone
// surrogates U+DC80..U+DCFF, one per byte: Python's own "surrogateescape", with which it
// decodes file names that are not UTF-8. Python loads such a str, and it comes back here as the
// bytes it stood for.
#pragma once

#include <ckpt/sdk_value.hpp>

#include <string>
#include <string_view>

namespace ckpt_pickle {

// A document string as the UTF-8 of a Python str.
inline std::string to_python_str(std::string_view bytes) {
  if (ckpt::sdk::valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  while (!bytes.empty()) {
    const size_t bad = ckpt::sdk::invalid_utf8_at(bytes);
    if (bad == std::string_view::npos) {
      out += bytes;
      break;
    }
    out += bytes.substr(0, bad);
    const auto b = static_cast<unsigned char>(bytes[bad]);  // >= 0x80: ASCII is always valid
    out += static_cast<char>(0xed);
    out += static_cast<char>(0xb0 | (b >> 6));
    out += static_cast<char>(0x80 | (b & 0x3f));
    bytes.remove_prefix(bad + 1);
  }
  return out;
}

// The inverse: every U+DC80..U+DCFF of a str's UTF-8 back to the byte it stands for.
inline std::string from_python_str(std::string_view utf8) {
  if (utf8.find('\xed') == std::string_view::npos) return std::string(utf8);
  std::string out;
  out.reserve(utf8.size());
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c == 0xed && i + 2 < utf8.size()) {
      const auto c1 = static_cast<unsigned char>(utf8[i + 1]), c2 = static_cast<unsigned char>(utf8[i + 2]);
      if ((c1 == 0xb2 || c1 == 0xb3) && (c2 & 0xc0) == 0x80) {
        out += static_cast<char>(((c1 & 0x03) << 6) | (c2 & 0x3f));
        i += 2;
        continue;
      }
    }
    out += static_cast<char>(c);
  }
  return out;
}

}  // namespace ckpt_pickle
