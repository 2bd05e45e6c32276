// Text helpers shared by the subcommands.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ckpt::cli {

// "a, b, c" (or with another separator), for lists in messages and tables.
inline std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string s;
  for (const auto& x : items) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

}  // namespace ckpt::cli
