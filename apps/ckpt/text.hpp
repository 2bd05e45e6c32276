// Text helpers shared by the subcommands.
#pragma once

#include <ckpt/sdk_value.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace ckpt::cli {

// "a, b, c" (or with another separator), for lists in messages and tables.
inline std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string s;
  for (const auto& x : items) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

// `s` as it may reach a terminal: names and strings come from files, and a control character
// (ESC, or U+009B, which some terminals take for CSI) would let a file drive the terminal. Those
// and bytes outside well-formed UTF-8 become \xNN; with `lines`, '\n' and '\t' stay (messages).
inline std::string terminal_safe(std::string_view s, bool lines = false) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  auto hex = [&](unsigned char c) {
    out += "\\x";
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  };
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && !(lines && (c == '\n' || c == '\t'))) || c == 0x7f) hex(c);
      else out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    const size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (s.size() - i < len || !ckpt::sdk::valid_utf8(s.substr(i, len))) {
      hex(c);
      ++i;
    } else if (c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
      hex(c);
      hex(static_cast<unsigned char>(s[i + 1]));
      i += 2;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace ckpt::cli
