// libFuzzer target for one format plugin's reader, built once per plugin folder with
// CKPT_FUZZ_PLUGIN naming it (tests/fuzz/CMakeLists.txt), so a new plugin is fuzzed the day it
// lands. The input goes through the host exactly as a file from a user would: written to a
// file, recognised by identify(), opened, listed, every tensor read and mapped, then the
// integrity and signature checks run over whatever metadata it claims.
//
// Findings are: a crash or sanitizer report, a hang (libFuzzer's -timeout), an allocation over
// -malloc_limit_mb, a peak of live heap beyond a small multiple of the input (below), and
// anything other than a ckpt::Error escaping (abort below).

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/signature.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sanitizer/allocator_interface.h>
#include <unistd.h>

#ifndef CKPT_FUZZ_PLUGIN
#error "define CKPT_FUZZ_PLUGIN to the plugin's name"
#endif

namespace {

struct Target {
  // Formats of the plugin under test. A Format keeps its library loaded once used, which the
  // fuzzer needs: the library's coverage counters must outlive every input.
  std::vector<ckpt::Format> formats;
  std::string path;
  int fd = -1;
};

Target* target = nullptr;

// Tensors are read only up to this many bytes in all: a reader may rightly describe more data
// than the input holds (HDF5's fill values, compression), and the harness must not be the one
// that allocates it.
constexpr uint64_t kReadBudget = 64 << 20;

// Live heap bytes, counted by the sanitizer's allocation hooks, and their peak since reset.
std::atomic<int64_t> live{0}, peak{0};

void on_malloc(const volatile void*, size_t n) {
  const int64_t now = live.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed) + static_cast<int64_t>(n);
  int64_t p = peak.load(std::memory_order_relaxed);
  while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
  }
}
void on_free(const volatile void* ptr) {
  live.fetch_sub(static_cast<int64_t>(__sanitizer_get_allocated_size(const_cast<const void*>(ptr))),
                 std::memory_order_relaxed);
}

// What a reader may hold at once for an input of `size` bytes: a small multiple of the input,
// the fixed part of the host's listing bound (docs/reliability.md: 64 MiB, which also covers
// libhdf5's caches and protobuf's arenas; a pickle's document and the host's copy of it both
// live here), and the largest
// tensor it was asked for twice over (the harness's buffer, and one decompressed chunk or copy
// inside the reader: a compressed tensor may rightly be far larger than the input).
constexpr int64_t kInputFactor = 16;
constexpr int64_t kFixedBytes = 64 << 20;
uint64_t largest_read = 0;

void exercise(const ckpt::Format& format, const uint8_t* data, size_t size) {
  format.identify({data, std::min<size_t>(size, 4096)}, size);
  auto reader = format.open_reader(target->path, {});
  const ckpt::Document& tree = reader->tree();
  uint64_t total = 0;
  std::vector<std::byte> buf;
  tree.for_each_tensor([&](const std::string& p, const ckpt::Tensor& t) {
    total += t.nbytes();
    if (total > kReadBudget) return;
    largest_read = std::max<uint64_t>(largest_read, t.nbytes());
    buf.resize(t.nbytes());
    reader->read_into(p, buf);
    // Every mapped byte touched: a mapping that promises more than the file holds faults here.
    if (auto m = reader->map(p)) {
      std::byte acc{};
      for (auto b : m->bytes()) acc ^= b;
      asm volatile("" : : "r"(acc));
    }
  });
  if (total > kReadBudget) return;
  ckpt::verify(*reader);
  // What signing and checking a signature read: the whole file and the manifest of every tensor.
  ckpt::describe_for_signing(target->path, *reader);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  target = new Target();
  const ckpt::Registry& reg = ckpt::Registry::global();
  for (const auto& f : reg.formats())
    if (f.plugin().name == CKPT_FUZZ_PLUGIN && f.info().can(CKPT_CAP_READ)) target->formats.push_back(f);
  if (target->formats.empty()) {
    std::fprintf(stderr, "fuzz: no readable format of plugin '%s' in the registry\n", CKPT_FUZZ_PLUGIN);
    std::abort();
  }
  // Loaded now, so libFuzzer registers the plugin's coverage counters before the first input.
  for (const auto& f : target->formats) f.identify({}, 0);
  const char* tmp = std::getenv("TMPDIR");
  target->path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ckpt-fuzz-" + CKPT_FUZZ_PLUGIN + "-" +
                 std::to_string(::getpid());
  target->fd = ::open(target->path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (target->fd < 0) std::abort();
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
  std::atexit([] { ::unlink(target->path.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (::ftruncate(target->fd, 0) != 0 || ::pwrite(target->fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  for (const auto& f : target->formats) {
    const int64_t before = live.load();
    peak.store(before);
    largest_read = 0;
    try {
      exercise(f, data, size);
    } catch (const ckpt::Error&) {
      // A typed error naming the file: what bad input must produce.
    }
    // Anything else (std::bad_alloc, a plain std::exception) propagates and aborts: a finding.
    const int64_t grew = peak.load() - before;
    const int64_t bound = kInputFactor * static_cast<int64_t>(size) + kFixedBytes + 2 * static_cast<int64_t>(largest_read);
    if (grew > bound) {
      std::fprintf(stderr, "fuzz: %s held %lld bytes of heap at once for a %zu-byte input (bound %lld)\n",
                   f.name().c_str(), static_cast<long long>(grew), size, static_cast<long long>(bound));
      std::abort();
    }
  }
  return 0;
}
