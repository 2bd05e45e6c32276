#include "h5_common.hpp"

#include <dlfcn.h>

namespace ckpt_hdf5 {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

namespace {

// The host unloads a plugin once nothing of it is alive, which would unload libhdf5 with it;
// but libhdf5 does not survive being unloaded and loaded again (after some two hundred cycles
// H5Fopen faults in H5E_clear_stack). So libhdf5 stays resident for the life of the process,
// while this plugin itself still unloads.
void keep_libhdf5_loaded() {
  static const bool pinned = [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&H5open), &info) != 0 && info.dli_fname)
      return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
    return false;
  }();
  (void)pinned;
}

}  // namespace

Lock::Lock() : guard_(hdf5_mutex()) {
  keep_libhdf5_loaded();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

namespace {

struct Innermost {
  std::string text;
  bool found = false;
};

herr_t take_innermost(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<Innermost*>(data);
  // Walking upward, entry 0 is where the failure was detected: the most specific reason.
  if (n != 0 || out->found) return 0;
  out->found = true;
  if (err->desc && *err->desc) {
    out->text = err->desc;
  } else {
    char buf[256] = {};
    if (H5Eget_msg(err->min_num, nullptr, buf, sizeof buf) > 0) out->text = buf;
  }
  return 0;
}

}  // namespace

std::string h5_message() {
  Innermost inner;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &inner);
  H5Eclear2(H5E_DEFAULT);
  return inner.found && !inner.text.empty() ? inner.text : "HDF5 reported an unspecified error";
}

void h5_fail(ckpt_status_code code, const std::string& where) {
  ckpt::sdk::fail(code, where + ": " + h5_message());
}

}  // namespace ckpt_hdf5
