#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ckpt {

// Format options passed through to a plugin ("compression=gzip"); order is kept.
using Options = std::vector<std::pair<std::string, std::string>>;

// Parses "key=value" strings; throws UsageError on a string without '='.
Options parse_options(const std::vector<std::string>& kv);

}  // namespace ckpt
