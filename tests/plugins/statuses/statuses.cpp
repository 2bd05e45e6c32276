// A plugin that fails by returning statuses, written against the C ABI (sdk.hpp would turn
// exceptions into well-formed statuses; this one also returns the ill-formed ones a careless
// plugin could). Two formats:
//  "status_open": open_writer/open_reader fail with the code named by option "code" (any
//    number, CKPT_OK and unknown codes included), or, with "code=none", succeed without
//    handing back an object.
//  "status_late": opens, then every call returns a status, a different code per entry point.
#include <ckpt/plugin_abi.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace {

const ckpt_host_api* g_host = nullptr;

// The test asks for codes outside the enum, as a C plugin may send them; in C++ such a value
// in an enum is undefined, so the sanitizer's enum check is off here alone.
__attribute__((no_sanitize("enum"))) ckpt_status* st(long code, const char* what) {
  return g_host->make_status(static_cast<ckpt_status_code>(code), what);
}

int identify(const uint8_t*, size_t, uint64_t) { return 0; }

struct Request {
  bool none = false;  // succeed without an object
  long code = CKPT_ERR_FORMAT;
};

Request requested(const ckpt_option* options, size_t n) {
  Request r;
  for (size_t i = 0; i < n; ++i)
    if (std::strcmp(options[i].key, "code") == 0) {
      r.none = std::strcmp(options[i].value, "none") == 0;
      r.code = std::strtol(options[i].value, nullptr, 10);
    }
  return r;
}

ckpt_status* open_writer_fails(const char*, const ckpt_option* o, size_t n, ckpt_writer** out,
                               const ckpt_writer_api** api) {
  Request r = requested(o, n);
  if (r.none) {
    *out = nullptr;
    *api = nullptr;
    return nullptr;
  }
  return st(r.code, "status plugin: open_writer fails as asked");
}

ckpt_status* open_reader_fails(const char*, const ckpt_option* o, size_t n, ckpt_reader** out,
                               const ckpt_reader_api** api) {
  Request r = requested(o, n);
  if (r.none) {
    *out = nullptr;
    *api = nullptr;
    return nullptr;
  }
  return st(r.code, "status plugin: open_reader fails as asked");
}

struct Object {
  int unused = 0;
};

const ckpt_writer_api kWriterApi = {
    sizeof(ckpt_writer_api),
    [](ckpt_writer*, const char*, uint64_t, uint64_t) { return st(CKPT_ERR_LIMIT, "status plugin: begin_group"); },
    [](ckpt_writer*) { return st(CKPT_ERR_INTERNAL, "status plugin: end_group"); },
    [](ckpt_writer*, const char*, const ckpt_value*) { return st(CKPT_ERR_UNSUPPORTED, "status plugin: attribute"); },
    [](ckpt_writer*, const ckpt_tensor_desc*, const void*) { return st(CKPT_ERR_IO, "status plugin: tensor"); },
    [](ckpt_writer*) { return st(CKPT_ERR_IO, "status plugin: finish"); },
    [](ckpt_writer* w) { delete reinterpret_cast<Object*>(w); },
    [](ckpt_writer*, const char*) { return st(CKPT_ERR_IO, "status plugin: committed"); },
};

const ckpt_reader_api kReaderApi = {
    sizeof(ckpt_reader_api),
    [](ckpt_reader*, const ckpt_visitor*) { return st(CKPT_ERR_FORMAT, "status plugin: list"); },
    [](ckpt_reader*, uint64_t, void*, uint64_t) { return st(CKPT_ERR_INTEGRITY, "status plugin: read_tensor"); },
    [](ckpt_reader*, uint64_t, const void**) { return st(CKPT_ERR_IO, "status plugin: map_tensor"); },
    [](ckpt_reader* r) { delete reinterpret_cast<Object*>(r); },
    nullptr,  // read_slice: the host cuts boxes itself
};

ckpt_status* open_writer_late(const char*, const ckpt_option*, size_t, ckpt_writer** out, const ckpt_writer_api** api) {
  *out = reinterpret_cast<ckpt_writer*>(new (std::nothrow) Object());
  *api = &kWriterApi;
  return *out ? nullptr : st(CKPT_ERR_OUT_OF_MEMORY, "status plugin: no memory");
}

ckpt_status* open_reader_late(const char*, const ckpt_option*, size_t, ckpt_reader** out, const ckpt_reader_api** api) {
  *out = reinterpret_cast<ckpt_reader*>(new (std::nothrow) Object());
  *api = &kReaderApi;
  return *out ? nullptr : st(CKPT_ERR_OUT_OF_MEMORY, "status plugin: no memory");
}

const char* const kOpenExt[] = {".statusopen", nullptr};
const char* const kLateExt[] = {".statuslate", nullptr};
constexpr uint32_t kCaps = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS |
                           CKPT_CAP_ATTRIBUTE_ARRAYS;

const ckpt_format kFormats[] = {
    {sizeof(ckpt_format), "status_open", "fails while opening", kOpenExt, nullptr, 0, kCaps, CKPT_DTYPES_ALL, 0,
     identify, open_writer_fails, open_reader_fails},
    {sizeof(ckpt_format), "status_late", "fails after opening", kLateExt, nullptr, 0, kCaps | CKPT_CAP_MAP,
     CKPT_DTYPES_ALL, 0, identify, open_writer_late, open_reader_late},
};

const ckpt_plugin_descriptor kDescriptor = {sizeof(ckpt_plugin_descriptor), CKPT_ABI_VERSION, "statuses", "1.0.0",
                                            kFormats, 2};

}  // namespace

extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1(const ckpt_host_api* host) {
  g_host = host;
  return &kDescriptor;
}
