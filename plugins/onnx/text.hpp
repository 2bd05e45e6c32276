// Small text helpers: UTF-8 checks (protobuf strings and JSON hold only valid UTF-8), hex for
// bytes that are not text, and names quoted for error messages.
#pragma once

#include <ckpt/sdk_names.hpp>

#include <ckpt/sdk_value.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_onnx {

using ckpt::sdk::valid_utf8;
using ckpt::sdk::to_hex;
using ckpt::sdk::from_hex;
// For messages: at most 64 bytes, control and non-UTF-8 bytes escaped, in double quotes.
std::string quote_text(std::string_view s);
std::string shape_text(std::span<const int64_t> shape);
using ckpt::sdk::escape_name;

}  // namespace ckpt_onnx
