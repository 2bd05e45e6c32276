// The msgpack format's own words in the layout it shares with json (docs/formats/msgpack.md;
// the shared vocabulary is plugins/common/doc_layout), used by the writer, the reader and
// identify so the three cannot drift apart.
#pragma once

#include <ckpt/plugin_abi.h>
#include <ckpt/sdk_value.hpp>
#include <doc_keys.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ckpt_msgpack {

using ckpt_doc::kAttrsKey;
using ckpt_doc::kDtypeKey;
using ckpt_doc::kFormatKey;
using ckpt_doc::kShapeKey;
using ckpt_doc::kTypeKey;
using ckpt_doc::kValueKey;
using ckpt_doc::kVersionKey;
using ckpt_doc::needs_escape;

inline constexpr std::string_view kFormatValue = "ckpt-msgpack";
inline constexpr uint64_t kVersion = ckpt_doc::kVersion;

inline constexpr std::string_view kPadKey = "$pad";    // zero bytes that align $data
inline constexpr std::string_view kDataKey = "$data";  // the tensor's bytes, a bin
// In the writer's order; their indices are the dialect's payload keys.
inline constexpr std::string_view kPayloadKeys[] = {kPadKey, kDataKey};
inline constexpr size_t kPad = 0;
inline constexpr size_t kData = 1;

// Tensor payloads start at multiples of this, so a mapped tensor is aligned for any dtype
// and for SIMD loads.
inline constexpr uint64_t kAlignment = 64;

// A msgpack str or bin holds at most 2^32 - 1 bytes; so does a tensor's $data.
inline constexpr uint64_t kMaxLength = 0xffffffffu;

// The type tags of empty arrays, which msgpack itself cannot type: the SDK's names of the array
// types, nullptr for anything else.
inline bool is_array_type(uint32_t value_type) {
  return value_type >= CKPT_VALUE_BOOL_ARRAY && value_type <= CKPT_VALUE_STRING_ARRAY;
}

inline const char* array_type_name(uint32_t value_type) {
  return is_array_type(value_type) ? ckpt::sdk::value_type_name(value_type) : nullptr;
}

}  // namespace ckpt_msgpack
