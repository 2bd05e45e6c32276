// The fast index's hash: XXH3-128 keyed with the registry's secret. Debian's libxxhash is built
// for baseline x86-64 (SSE2, 6 GB/s here); an AVX2 build of the same function is chosen at run
// time where the CPU has it (the values are identical, only the speed differs), so that
// finding the unchanged tensors of a 1 GiB checkpoint costs tens of milliseconds.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ckpt::model_registry::detail {

// 32 hex digits, ':' and the byte count.
std::string fast_key(std::span<const std::byte> bytes, const std::string& secret);

}  // namespace ckpt::model_registry::detail
