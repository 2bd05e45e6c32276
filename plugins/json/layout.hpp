// The on-disk vocabulary of the json format (docs/formats/json.md). Keys that start with a single
// '$' belong to the format; a document name starting with '$' gets one more '$' on disk.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ckpt::jsonfmt {

inline constexpr std::string_view kFormatKey = "$format";
inline constexpr std::string_view kFormatName = "ckpt-json";
inline constexpr std::string_view kVersionKey = "$version";
inline constexpr int kVersion = 1;
inline constexpr std::string_view kAttrsKey = "$attrs";
inline constexpr std::string_view kDtypeKey = "$dtype";
inline constexpr std::string_view kShapeKey = "$shape";
inline constexpr std::string_view kDataKey = "$data";
inline constexpr std::string_view kValuesKey = "$values";
inline constexpr std::string_view kTypeKey = "$type";
inline constexpr std::string_view kValueKey = "$value";

// Groups nested deeper than this are refused by both sides, so that a hostile file cannot make
// the reader's list() recurse without bound.
inline constexpr size_t kMaxGroupDepth = 1000;

inline bool is_reserved_key(std::string_view key) {
  return key.size() >= 1 && key[0] == '$' && !(key.size() >= 2 && key[1] == '$');
}

inline std::string name_to_key(std::string_view name) {
  std::string key;
  if (!name.empty() && name[0] == '$') key.push_back('$');
  key.append(name);
  return key;
}

// Only for keys that are not reserved.
inline std::string_view key_to_name(std::string_view key) {
  return key.size() >= 2 && key[0] == '$' ? key.substr(1) : key;
}

}  // namespace ckpt::jsonfmt
