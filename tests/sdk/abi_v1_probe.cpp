// Compiled into the hello plugin built against ABI v1: fails that build unless its sources see
// the frozen 0.1.0 SDK headers, where ckpt_reader_api ends at destroy (40 bytes), rather than
// the current ones.
#include <ckpt/sdk.hpp>

static_assert(sizeof(ckpt_reader_api) == 40, "the ABI v1 build of hello must compile against tests/sdk/abi_v1");
