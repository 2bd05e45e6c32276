// Small text helpers: UTF-8 checks (protobuf strings and JSON hold only valid UTF-8), hex for
// bytes that are not text, and names quoted for error messages.
#pragma once

#include <ckpt/sdk_names.hpp>

#include <ckpt/sdk_quote.hpp>
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
using ckpt::sdk::quote_text;
using ckpt::sdk::shape_text;
using ckpt::sdk::escape_name;

}  // namespace ckpt_onnx
