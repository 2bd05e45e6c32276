// Names and shapes in layout messages, as the ONNX plugin quoted them (the reasons are kept in
// files: extra/onnx/@spec, metadata ckpt.graph).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ckpt::layouts {

// At most 64 bytes, control and non-UTF-8 bytes escaped, in double quotes.
std::string quote_text(std::string_view s);
std::string shape_text(std::span<const int64_t> shape);

}  // namespace ckpt::layouts
