// libFuzzer target for the plugin manifest parser (ckpt_<name>.ckpt-plugin.json beside each
// plugin): the registry reads every manifest in every plugin folder before loading any code.
#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {
std::string* path = nullptr;
int fd = -1;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/ckpt-fuzz-manifest-" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0700);
  path = new std::string(dir + "/ckpt_fuzz.ckpt-plugin.json");
  fd = ::open(path->c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  std::atexit([] {
    ::unlink(path->c_str());
    ::rmdir(path->substr(0, path->rfind('/')).c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  try {
    ckpt::parse_manifest(*path);
  } catch (const ckpt::Error&) {
  }
  return 0;
}
