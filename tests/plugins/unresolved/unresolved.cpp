// A plugin that cannot be loaded: it needs a symbol no library provides, so the dynamic loader
// refuses it (RTLD_NOW), as it would a plugin built against another version of a dependency.
#include <ckpt/plugin_abi.h>

extern "C" const ckpt_plugin_descriptor* ckpt_test_symbol_that_no_library_defines(const ckpt_host_api*);

extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1(const ckpt_host_api* host) {
  return ckpt_test_symbol_that_no_library_defines(host);
}
