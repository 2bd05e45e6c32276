// The host side of statuses: plugins make them through the host API; the host turns them into
// typed exceptions.
#pragma once

#include <ckpt/plugin_abi.h>

#include <string>

struct ckpt_status {
  // Kept as the plugin's raw number: a plugin may pass a code this host does not know (a newer
  // SDK's, or garbage), and holding that in the enum type would be undefined behaviour.
  int code;
  std::string message;
};

namespace ckpt::detail {

const ckpt_host_api* host_api();

// Takes ownership of `s` (non-null) and throws the typed error for its code, prefixed by
// `context` (file and format).
[[noreturn]] void throw_status(ckpt_status* s, const std::string& context);

// Frees a status the host handles itself rather than throwing.
void release_status(ckpt_status* s);

}  // namespace ckpt::detail
