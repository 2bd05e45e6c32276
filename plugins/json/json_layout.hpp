// The json format's own words in the layout it shares with msgpack (docs/formats/json.md;
// the shared vocabulary is plugins/common/doc_layout): the value of $format and the keys that
// carry a tensor's elements.
#pragma once

#include <doc_keys.hpp>

#include <string_view>

namespace ckpt_json {

using ckpt_doc::kAttrsKey;
using ckpt_doc::kFormatKey;
using ckpt_doc::kMaxGroupDepth;
using ckpt_doc::kVersion;
using ckpt_doc::kVersionKey;
using ckpt_doc::name_to_key;

inline constexpr std::string_view kFormatName = "ckpt-json";
inline constexpr std::string_view kDataKey = "$data";      // base64 of the bytes
inline constexpr std::string_view kValuesKey = "$values";  // the elements as JSON numbers
// In the writer's order; their indices are the dialect's payload keys.
inline constexpr std::string_view kPayloadKeys[] = {kDataKey, kValuesKey};
inline constexpr size_t kData = 0;
inline constexpr size_t kValues = 1;

// A rank beyond this is surely a corrupt file, not a tensor.
inline constexpr size_t kMaxRank = 1024;

}  // namespace ckpt_json
