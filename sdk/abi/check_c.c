/* The ABI header is the contract for plugins written in C (or any language with a C FFI): it
 * must stay valid, warning-free C. */
#include <ckpt/plugin_abi.h>

_Static_assert(sizeof(ckpt_format) >= 80, "ckpt_format shrank");
