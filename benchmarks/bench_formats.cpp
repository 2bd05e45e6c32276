// Save and load throughput of every format plugin on a 256 MiB state dict (1 GiB with
// CKPT_BENCH_LARGE=1), beside the machine's own limits measured in the same run: memcpy into a
// reused buffer, and write() of the same bytes into a new file.
//
//   bench_formats [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
//
// Files go to CKPT_BENCH_DIR (default: ./bench-tmp), which must be on a real disk.
#include "state_dict.hpp"

#include <ckpt/io.hpp>
#include <ckpt/plugin_abi.h>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;
using namespace ckpt;

namespace {

size_t size_mib() { return std::getenv("CKPT_BENCH_LARGE") ? 1024 : 256; }

const Document& state() {
  static Document d = bench::make_state_dict(size_mib());
  return d;
}

fs::path dir() {
  static fs::path d = [] {
    const char* e = std::getenv("CKPT_BENCH_DIR");
    fs::path p = e ? e : "bench-tmp";
    fs::create_directories(p);
    return p;
  }();
  return d;
}

void set_bytes(benchmark::State& s) {
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations()) * static_cast<int64_t>(state().tensor_bytes()));
}

// Reused destination buffers, as a real program loading into its existing parameters has.
std::vector<std::vector<std::byte>>& buffers() {
  static std::vector<std::vector<std::byte>> b;
  if (b.empty()) state().for_each_tensor([&](const std::string&, const Tensor& t) {
      b.emplace_back(t.nbytes(), std::byte{1});
    });
  return b;
}

void BM_memcpy(benchmark::State& s) {
  auto& bufs = buffers();
  for (auto _ : s) {
    size_t i = 0;
    state().for_each_tensor([&](const std::string&, const Tensor& t) {
      std::memcpy(bufs[i++].data(), t.bytes().data(), t.nbytes());
    });
    benchmark::ClobberMemory();
  }
  set_bytes(s);
}

void BM_write_raw(benchmark::State& s, bool durable) {
  fs::path p = dir() / "raw.bin";
  for (auto _ : s) {
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    state().for_each_tensor([&](const std::string&, const Tensor& t) {
      auto b = t.bytes();
      for (size_t o = 0; o < b.size();) {
        ssize_t w = ::write(fd, b.data() + o, b.size() - o);
        if (w <= 0) std::abort();
        o += static_cast<size_t>(w);
      }
    });
    if (durable) ::fdatasync(fd);
    ::close(fd);
    s.PauseTiming();
    fs::remove(p);  // each save writes a new file, as an atomic save does
    s.ResumeTiming();
  }
  set_bytes(s);
}

void BM_save(benchmark::State& s, Format f, bool durable) {
  fs::path p = dir() / ("bench" + f.info().extensions.at(0));
  SaveOptions o;
  o.fsync = durable;
  for (auto _ : s) {
    write_document(state(), p, f, o);
    s.PauseTiming();
    fs::remove(p);
    s.ResumeTiming();
  }
  set_bytes(s);
}

void BM_load(benchmark::State& s, Format f) {
  fs::path p = dir() / ("bench-load" + f.info().extensions.at(0));
  if (!fs::exists(p)) write_document(state(), p, f, {.fsync = false});
  auto& bufs = buffers();
  for (auto _ : s) {
    auto r = f.open_reader(p, {});
    size_t i = 0;
    r->tree().for_each_tensor([&](const std::string& path, const Tensor&) { r->read_into(path, bufs[i++]); });
    benchmark::ClobberMemory();
  }
  set_bytes(s);
}

void BM_open_one_tensor(benchmark::State& s, Format f) {
  fs::path p = dir() / ("bench-load" + f.info().extensions.at(0));
  if (!fs::exists(p)) write_document(state(), p, f, {.fsync = false});
  for (auto _ : s) {
    auto r = f.open_reader(p, {});
    auto t = r->map("model/state/layers.1.weight");
    benchmark::DoNotOptimize(t ? t->bytes()[12345] : r->read("model/state/layers.1.weight").bytes()[12345]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RegisterBenchmark("limit/memcpy", BM_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("limit/write", BM_write_raw, false)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("limit/write+fdatasync", BM_write_raw, true)->Unit(benchmark::kMillisecond)->UseRealTime();
  for (const Format& f : Registry::global().formats()) {
    if (!f.info().can(CKPT_CAP_WRITE) || !f.info().can(CKPT_CAP_READ)) continue;
    benchmark::RegisterBenchmark(("save/" + f.name()).c_str(), BM_save, f, false)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("save+fsync/" + f.name()).c_str(), BM_save, f, true)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("load/" + f.name()).c_str(), BM_load, f)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("open+one/" + f.name()).c_str(), BM_open_one_tensor, f)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fs::remove_all(dir());
  return 0;
}
