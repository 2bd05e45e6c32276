// A plugin whose entry point returns NULL: the ABI's way of saying "I cannot work with this
// host".
#include <ckpt/plugin_abi.h>

extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1(const ckpt_host_api*) {
  return nullptr;
}
