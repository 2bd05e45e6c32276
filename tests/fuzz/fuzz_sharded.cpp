// libFuzzer target for a sharded checkpoint's index (ckpt.sharded.json, docs/sharded.md): the
// input is the index of a folder whose two msgpack shards are fixed, real ones, so every claim
// the index makes (names, boxes, shapes, shards, the shard format) meets files it may or may
// not describe. Each input is opened as a user's folder is: the index parsed and checked, the
// shards opened and checked against it, every tensor read and verified against its hashes.
#include "fuzz_sharded_fixture.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/sharded.hpp>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

struct Target {
  // Every format of the build, loaded before the first input and held: the index names its
  // shards' format, so any plugin may be asked for, and a plugin library loaded by one input and
  // unloaded after it leaves libFuzzer holding coverage counters of unmapped memory (the first
  // version of this target crashed in TracePC so: its fixture's save loaded msgpack in
  // LLVMFuzzerInitialize and dropped it).
  std::vector<ckpt::Format> formats;
  std::string folder;
  int fd = -1;
};

Target* target = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  target = new Target();
  target->formats = ckpt::Registry::global().formats();
  bool msgpack = false;
  for (const auto& f : target->formats) {
    f.identify({}, 0);
    msgpack = msgpack || f.name() == "msgpack";
  }
  if (!msgpack) {
    std::fprintf(stderr, "fuzz: no msgpack format in the registry (the fixture's shards are msgpack)\n");
    std::abort();
  }
  const char* tmp = std::getenv("TMPDIR");
  target->folder = std::string(tmp && *tmp ? tmp : "/tmp") + "/ckpt-fuzz-sharded-" + std::to_string(::getpid());
  ckpt::fuzz::make_sharded_fixture(target->folder);
  target->fd = ::open((target->folder + "/" + ckpt::sharded::kIndexName).c_str(), O_RDWR | O_CLOEXEC);
  if (target->fd < 0) std::abort();
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(target->folder, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (::ftruncate(target->fd, 0) != 0 || ::pwrite(target->fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  try {
    auto reader = ckpt::open(target->folder);
    reader->load(false);
    ckpt::verify(*reader);
  } catch (const ckpt::Error&) {
    // A typed error naming the index: what a bad index must produce. Anything else escaping
    // (std::bad_alloc, a plain std::exception) aborts: a finding.
  }
  return 0;
}
