// JSON text for strings: escaping, and short forms for messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ckpt_json {

// Appends `s` as a quoted JSON string. Only '"', '\\' and control characters are escaped, so
// the text stays readable and its bytes are fixed by the input alone.
void append_json_string(std::string& out, std::string_view s);

// `s` in single quotes for an error message (ckpt_doc::quote_text: escaped, and cut short so
// that a hostile key keeps the message on one line).
std::string shown(std::string_view s);

}  // namespace ckpt_json
