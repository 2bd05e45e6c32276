// libFuzzer target for a sharded checkpoint's index (ckpt.sharded.json, docs/sharded.md): the
// input is the index of a folder whose two msgpack shards are fixed, real ones, so every claim
// the index makes (names, boxes, shapes, shards) meets files it may or may not describe.
#include "fuzz_sharded_fixture.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/sharded.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace {
std::string* folder = nullptr;
int fd = -1;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  folder = new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/ckpt-fuzz-sharded-" + std::to_string(::getpid()));
  ckpt::fuzz::make_sharded_fixture(*folder);
  fd = ::open((*folder + "/" + ckpt::sharded::kIndexName).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) std::abort();
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(*folder, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  try {
    auto reader = ckpt::open(*folder);
    reader->load(false);
    ckpt::verify(*reader);
  } catch (const ckpt::Error&) {
  }
  return 0;
}
