// A plugin whose entry point itself throws a C++ exception across the C boundary, which the ABI
// forbids: the host must still turn it into a PluginError.
#include <ckpt/plugin_abi.h>

#include <stdexcept>

extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1(const ckpt_host_api*) {
  throw std::runtime_error("entry_throws plugin: thrown from the entry point");
}
