// The current ABI header against the v1 golden layout: compiled into every build of ckpt (the
// ckpt_abi_check target), so a change that would break built plugins fails the build.
#include <ckpt/plugin_abi.h>

#include "abi_v1/golden_layout.hpp"
