// Performance hints that a user can turn off from the environment for a machine where they cost
// more than they save: on unless the variable is exactly "0".
#pragma once

#include <cstdlib>
#include <cstring>

namespace ckpt::detail {

inline bool env_switch_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::strcmp(v, "0") == 0);
}

}  // namespace ckpt::detail
