#include "text.hpp"

#include <ckpt/sdk_value.hpp>

#include <cstdio>

namespace ckpt::layouts {

std::string quote_text(std::string_view s) {
  const bool utf8 = sdk::valid_utf8(s);
  std::string out = "\"";
  constexpr size_t limit = 64;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (c >= 0x80 && !utf8)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out + "\"";
}

std::string shape_text(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace ckpt::layouts
