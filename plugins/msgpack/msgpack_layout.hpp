// The on-disk vocabulary of the ckpt MessagePack layout (docs/formats/msgpack.md), shared by
// the writer, the reader and identify so the three cannot drift apart.
#pragma once

#include <ckpt/plugin_abi.h>
#include <ckpt/sdk_value.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ckpt_msgpack {

inline constexpr std::string_view kFormatKey = "$format";
inline constexpr std::string_view kFormatValue = "ckpt-msgpack";
inline constexpr std::string_view kVersionKey = "$version";
inline constexpr uint64_t kVersion = 1;

inline constexpr std::string_view kAttrsKey = "$attrs";
inline constexpr std::string_view kDtypeKey = "$dtype";
inline constexpr std::string_view kShapeKey = "$shape";
inline constexpr std::string_view kPadKey = "$pad";
inline constexpr std::string_view kDataKey = "$data";
inline constexpr std::string_view kTypeKey = "$type";
inline constexpr std::string_view kValueKey = "$value";

// Tensor payloads start at multiples of this, so a mapped tensor is aligned for any dtype
// and for SIMD loads.
inline constexpr uint64_t kAlignment = 64;

// Bounds the parser's and list()'s stacks; real checkpoints nest a handful of levels.
inline constexpr size_t kMaxDepth = 1024;

// A msgpack str or bin holds at most 2^32 - 1 bytes; so does a tensor's $data.
inline constexpr uint64_t kMaxLength = 0xffffffffu;

// Document names may start with '$' too; escaping keeps them apart from the reserved keys.
inline bool needs_escape(std::string_view name) { return !name.empty() && name[0] == '$'; }

// The type tags of empty arrays, which msgpack itself cannot type: the SDK's names of the array
// types, nullptr (or 0) for anything else.
inline bool is_array_type(uint32_t value_type) {
  return value_type >= CKPT_VALUE_BOOL_ARRAY && value_type <= CKPT_VALUE_STRING_ARRAY;
}

inline const char* array_type_name(uint32_t value_type) {
  return is_array_type(value_type) ? ckpt::sdk::value_type_name(value_type) : nullptr;
}

inline uint32_t array_type_from_name(std::string_view s) {
  const uint32_t t = ckpt::sdk::value_type_from_name(s);
  return is_array_type(t) ? t : 0;
}

}  // namespace ckpt_msgpack
