// Export (save with fsync, atomic) and import (read into new memory) of a state dict through
// the onnx plugin, beside python3-onnx saving and loading the same initializers, interleaved
// in the same run: each iteration is one ckpt export, one ckpt import, one ckpt load with
// mapping (tensors whose raw_data happens to be aligned for f32 are views, the rest copies),
// then one python save and load. Google Benchmark's time is ckpt's export; the counters are
// the medians of each as MB/s (10^6 bytes per second) of tensor data.
//
//   bench_onnx [--benchmark_filter=/256] [google benchmark flags]
//
// First, in a child process that holds one 64 MiB buffer and nothing else, it streams the 1 GiB
// state dict's layout through the writer (every tensor's bytes from that one buffer) and prints
// the child's peak resident memory: what saving costs beyond the caller's own tensors.
// CKPT_BENCH_PEAK_MIB=N streams N MiB instead (past 2048 the writer moves tensors to external
// data) and CKPT_BENCH_KEEP=1 keeps that file (peak.onnx) for a look with other tools.
//
// 256 MiB and 1 GiB of f32 tensors (random bits, see ../state_dict.hpp). Files go to
// CKPT_BENCH_DIR (default ./bench-tmp), which must be on a real disk; loads read what was just
// written, from the page cache.
#include "state_dict.hpp"
#include "timing.hpp"

#include <ckpt/io.hpp>

#include <ckpt/format_io.hpp>
#include <ckpt/registry.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt;
using bench::median;
using bench::seconds_since;

namespace {

void ExportImport(benchmark::State& state) {
  const size_t mib = static_cast<size_t>(state.range(0));
  const char* env = std::getenv("CKPT_BENCH_DIR");
  const fs::path dir = env ? env : "bench-tmp";
  fs::create_directories(dir);
  const fs::path ours = dir / "ours.onnx", theirs = dir / "python.onnx";
  const std::string script = std::string(CKPT_BENCH_SOURCE_DIR) + "/onnx_py_side.py";

  const Document doc = bench::make_state_dict(mib);
  const double bytes = static_cast<double>(doc.tensor_bytes());
  SaveOptions save_opts;
  save_opts.format = "onnx";
  LoadOptions load_opts;
  load_opts.format = "onnx";
  load_opts.map = false;
  LoadOptions map_opts = load_opts;
  map_opts.map = true;
  write_document(doc, ours, save_opts);  // what the python side takes its arrays from

  std::vector<double> our_save, our_load, our_map, py_save, py_load;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    write_document(doc, ours, save_opts);
    our_save.push_back(seconds_since(t0));
    state.SetIterationTime(our_save.back());
    t0 = std::chrono::steady_clock::now();
    Document back = read_document(ours, load_opts);
    our_load.push_back(seconds_since(t0));
    if (back.tensor_bytes() != doc.tensor_bytes()) {
      state.SkipWithError("the file read back is not what was written");
      break;
    }
    back = Document();
    t0 = std::chrono::steady_clock::now();
    back = read_document(ours, map_opts);
    our_map.push_back(seconds_since(t0));
    back = Document();

    const std::string cmd = "/usr/bin/python3 '" + script + "' '" + ours.string() + "' '" + theirs.string() + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    double s = 0, l = 0;
    if (!p || std::fscanf(p, "%lf %lf", &s, &l) != 2 || ::pclose(p) != 0) {
      state.SkipWithError("the python3-onnx side failed");
      break;
    }
    py_save.push_back(s);
    py_load.push_back(l);
    std::fprintf(stderr, "%zu MiB: ckpt export %.3f s import %.3f s (mapped %.3f s) | python3-onnx save %.3f s load %.3f s\n",
                 mib, our_save.back(), our_load.back(), our_map.back(), s, l);
  }
  if (our_save.empty() || py_save.empty()) return;
  auto rate = [&](const std::vector<double>& v) { return benchmark::Counter(bytes / 1e6 / median(v)); };
  state.counters["ckpt_export_MB/s"] = rate(our_save);
  state.counters["ckpt_import_MB/s"] = rate(our_load);
  state.counters["ckpt_map_MB/s"] = rate(our_map);
  state.counters["py_onnx_save_MB/s"] = rate(py_save);
  state.counters["py_onnx_load_MB/s"] = rate(py_load);
  state.counters["tensors"] = static_cast<double>(doc.tensor_count());
  fs::remove(ours);
  fs::remove(theirs);
}

BENCHMARK(ExportImport)->Arg(256)->Arg(1024)->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);

// VmHWM and VmRSS of this process, in MiB.
std::pair<double, double> resident_mib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  double hwm = 0, rss = 0;
  while (in >> key) {
    if (key == "VmHWM:") in >> hwm;
    else if (key == "VmRSS:") in >> rss;
  }
  return {hwm / 1024, rss / 1024};
}

// The child of peak_memory(): the shapes of make_state_dict(1024), every tensor borrowing one
// 64 MiB buffer of random bits, streamed through the onnx writer.
int stream_from_one_buffer(const fs::path& out, size_t mib) {
  std::vector<uint64_t> buffer((size_t(64) << 20) / 8);
  std::mt19937_64 rng(1);
  for (auto& x : buffer) x = rng();
  Document tree;
  Group& state = tree.group("model").group("state");
  size_t remaining = mib << 20;
  int i = 0;
  auto add = [&](Shape shape) {
    Tensor t = Tensor::borrow(DType::f32, shape, static_cast<const void*>(buffer.data()));
    remaining -= t.nbytes();
    state.add_tensor("layers." + std::to_string(i++) + ".weight", t);
  };
  while (remaining >= (size_t(64) << 20) + (size_t(64) << 20)) add({4096, 4096});
  while (remaining >= (size_t(4) << 20)) add({1024, 1024});
  while (remaining >= 4096) add({1024});
  const auto before = resident_mib();
  Registry::global().get("onnx").open_writer(out, {})->write(tree);
  const auto after = resident_mib();
  std::printf("peak memory, streaming a %zu MiB state dict (%zu tensors) from one 64 MiB buffer: %.0f MiB resident "
              "before the save, peak %.0f MiB (the writer's own: %.0f MiB)\n",
              mib, tree.tensor_count(), before.second, after.first, after.first - before.second);
  return 0;
}

void peak_memory(const fs::path& dir) {
  fs::create_directories(dir);
  const char* env = std::getenv("CKPT_BENCH_PEAK_MIB");
  const size_t mib = env ? std::strtoull(env, nullptr, 10) : 1024;
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = stream_from_one_buffer(dir / "peak.onnx", mib);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_onnx: %s\n", e.what());
    }
    std::fflush(stdout);
    std::_Exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!std::getenv("CKPT_BENCH_KEEP")) {
    fs::remove(dir / "peak.onnx");
    fs::remove(dir / "peak.onnx.data");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("CKPT_BENCH_DIR");
  peak_memory(env ? env : "bench-tmp");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
