// The frozen v1 header against the golden layout: keeps the golden numbers honest, since they
// must describe the header that v1 plugins were built with.
#include "abi_v1/ckpt/plugin_abi.h"

#include "abi_v1/golden_layout.hpp"
