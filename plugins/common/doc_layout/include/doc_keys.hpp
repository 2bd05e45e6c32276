// The vocabulary json and msgpack documents share (docs/formats/json.md, msgpack.md): the
// reserved keys, how a document name that starts with '$' is escaped, and the nesting limit.
#pragma once

#include <ckpt/sdk_limits.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace ckpt_doc {

inline constexpr std::string_view kFormatKey = "$format";
inline constexpr std::string_view kVersionKey = "$version";
inline constexpr int kVersion = 1;
inline constexpr std::string_view kAttrsKey = "$attrs";
inline constexpr std::string_view kDtypeKey = "$dtype";
inline constexpr std::string_view kShapeKey = "$shape";
inline constexpr std::string_view kTypeKey = "$type";
inline constexpr std::string_view kValueKey = "$value";

inline constexpr size_t kMaxGroupDepth = ckpt::sdk::kMaxGroupDepth;

// A key with one '$' but not two is the layout's own.
inline bool is_reserved_key(std::string_view key) {
  return !key.empty() && key[0] == '$' && !(key.size() >= 2 && key[1] == '$');
}

inline bool needs_escape(std::string_view name) { return !name.empty() && name[0] == '$'; }

inline std::string name_to_key(std::string_view name) {
  std::string key;
  if (needs_escape(name)) key.push_back('$');
  key.append(name);
  return key;
}

// Only for keys that are not reserved.
inline std::string_view key_to_name(std::string_view key) {
  return key.size() >= 2 && key[0] == '$' ? key.substr(1) : key;
}

}  // namespace ckpt_doc
