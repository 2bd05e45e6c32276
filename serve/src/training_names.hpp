// How the trainer's checkpoint manager names the files of a training folder, in one place for
// everything in libckpt_serve that lists such a folder (the model server's polling and the web
// page), so the two never disagree about which files are checkpoints.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ckpt::serve::detail {

// "step-000000123.<ext>" -> 123. Exactly one extension, so a signature beside a checkpoint
// (step-000000123.<ext>.sig) or any other file derived from it is not taken for one; hidden
// temporaries of interrupted saves start with '.' and never match.
inline std::optional<int64_t> training_step(std::string_view name) {
  constexpr size_t kDigits = 9, kDot = 5 + kDigits;
  if (name.size() < kDot + 2 || !name.starts_with("step-") || name[kDot] != '.' ||
      name.find('.', kDot + 1) != std::string_view::npos)
    return std::nullopt;
  int64_t v = 0;
  for (size_t i = 5; i < kDot; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

}  // namespace ckpt::serve::detail
