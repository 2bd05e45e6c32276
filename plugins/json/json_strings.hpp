// JSON text for strings: UTF-8 validation and escaping. The writer checks UTF-8 itself because
// a string it writes must come back byte for byte, and nlohmann's reader rejects what is not
// UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ckpt::jsonfmt {

inline constexpr size_t kValidUtf8 = static_cast<size_t>(-1);

// kValidUtf8, or the offset of the first byte that does not start a well-formed sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t find_invalid_utf8(std::string_view s);

// Appends `s` as a quoted JSON string. Only '"', '\\' and control characters are escaped, so
// the text stays readable and its bytes are fixed by the input alone.
void append_json_string(std::string& out, std::string_view s);

// `s` in single quotes for an error message, cut short so that a hostile key keeps the
// message on one line.
std::string shown(std::string_view s);

}  // namespace ckpt::jsonfmt
