// A library with a manifest but without ckpt_plugin_entry_v1, as an old or foreign plugin
// would be: it exports something else so the library itself loads fine.
#include <ckpt/plugin_abi.h>

extern "C" CKPT_PLUGIN_EXPORT int ckpt_plugin_entry_v0(void) { return 0; }
