// Names and shapes in layout messages, as the ONNX plugin quoted them (the reasons are kept in
// files: extra/onnx/@spec, metadata ckpt.graph).
#pragma once

#include <ckpt/sdk_quote.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ckpt::layouts {

using sdk::quote_text;
using sdk::shape_text;

}  // namespace ckpt::layouts
