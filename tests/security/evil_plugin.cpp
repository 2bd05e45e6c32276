// A plugin an attacker drops in a download folder: merely loading it runs its constructor,
// which leaves a marker file (the path in CKPT_EVIL_MARKER). ckpt must never load it from a
// folder the user did not name by an absolute path.
#include <ckpt/plugin_abi.h>

#include <cstdio>
#include <cstdlib>

__attribute__((constructor)) static void ran() {
  if (const char* m = std::getenv("CKPT_EVIL_MARKER"))
    if (std::FILE* f = std::fopen(m, "w")) std::fclose(f);
}

extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1(const ckpt_host_api*) {
  return nullptr;
}
