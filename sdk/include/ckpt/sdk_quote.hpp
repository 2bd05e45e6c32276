// Text from a file as error messages show it: names quoted and cut short, shapes written out.
// Header-only, so the host's layouts and the plugins quote alike (the ONNX layout's reasons are
// kept in files word for word, so this wording is part of what files hold).
#pragma once

#include <ckpt/sdk_value.hpp>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

namespace ckpt::sdk {

// At most 64 bytes, control and non-UTF-8 bytes (and the quote and backslash) as \xNN, in
// double quotes.
inline std::string quote_text(std::string_view s) {
  const bool utf8 = valid_utf8(s);
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

// "[2, 3]"; with separator "," the JSON form safetensors' header holds ("[2,3]").
inline std::string shape_text(std::span<const int64_t> shape, std::string_view separator = ", ") {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += separator;
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace ckpt::sdk
