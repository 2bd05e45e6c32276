// A plugin built for a future ABI: its descriptor says abi_version 2 while the manifest beside
// it (written by hand) claims 1, as a stale manifest would. Written against the C ABI directly,
// because sdk.hpp always stamps the version it was compiled with.
#include <ckpt/plugin_abi.h>

namespace {

const ckpt_host_api* g_host = nullptr;

int identify(const uint8_t*, size_t, uint64_t) { return 0; }

ckpt_status* refuse_writer(const char*, const ckpt_option*, size_t, ckpt_writer**, const ckpt_writer_api**) {
  return g_host->make_status(CKPT_ERR_UNSUPPORTED, "abi2 test plugin writes nothing");
}
ckpt_status* refuse_reader(const char*, const ckpt_option*, size_t, ckpt_reader**, const ckpt_reader_api**) {
  return g_host->make_status(CKPT_ERR_UNSUPPORTED, "abi2 test plugin reads nothing");
}

const char* const kExtensions[] = {".abitwo", nullptr};

const ckpt_format kFormats[] = {{sizeof(ckpt_format), "abitwo", "built for ABI 2", kExtensions, nullptr, 0,
                                 CKPT_CAP_READ | CKPT_CAP_WRITE, CKPT_DTYPES_ALL, 0, identify, refuse_writer,
                                 refuse_reader}};

const ckpt_plugin_descriptor kDescriptor = {sizeof(ckpt_plugin_descriptor), 2, "abi2", "2.0.0", kFormats, 1};

}  // namespace

extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1(const ckpt_host_api* host) {
  g_host = host;
  return &kDescriptor;
}
