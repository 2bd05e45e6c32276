#include "status.hpp"

#include <ckpt/errors.hpp>

#include <cstring>
#include <memory>
#include <new>

namespace ckpt::detail {

namespace {
// A status must always be returnable, even when memory is short.
ckpt_status oom_status{CKPT_ERR_OUT_OF_MEMORY, "out of memory"};

ckpt_status* make_status(ckpt_status_code code, const char* message) {
  // Copies the representation rather than reading the enum, which may hold any int.
  int raw = 0;
  static_assert(sizeof raw == sizeof code);
  std::memcpy(&raw, &code, sizeof raw);
  try {
    return new ckpt_status{raw, message ? message : ""};
  } catch (const std::bad_alloc&) {
    return &oom_status;
  }
}
}  // namespace

const ckpt_host_api* host_api() {
  static const ckpt_host_api api = {sizeof(ckpt_host_api), CKPT_ABI_VERSION, make_status};
  return &api;
}

void release_status(ckpt_status* s) {
  if (s != &oom_status) delete s;
}

void throw_status(ckpt_status* s, const std::string& context) {
  const int code = s->code;
  std::string msg = context + ": " + s->message;
  release_status(s);
  switch (code) {
    case CKPT_ERR_FORMAT: throw FormatError(msg);
    case CKPT_ERR_LIMIT: throw LimitError(msg);
    case CKPT_ERR_IO: throw IoError(msg);
    case CKPT_ERR_INTEGRITY: throw IntegrityError(msg);
    case CKPT_ERR_UNSUPPORTED: throw UnsupportedError(msg);
    case CKPT_ERR_INVALID_ARGUMENT: throw UsageError(msg);
    case CKPT_ERR_NOT_FOUND: throw IoError(msg);
    case CKPT_ERR_OUT_OF_MEMORY: throw std::bad_alloc();
    case CKPT_OK:
    case CKPT_ERR_INTERNAL:
    default: throw PluginError(msg + " (internal error in plugin)");
  }
}

}  // namespace ckpt::detail
