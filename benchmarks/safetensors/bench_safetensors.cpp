// Save and load through the safetensors plugin beside the machine's own limits, measured in the
// same run and interleaved, so that a noisy shared machine moves both sides alike:
//
//   save+fsync   ckpt::write_document to .safetensors (atomic: temporary, fsync, rename, fsync
//                of the folder), against `dd if=/dev/zero conv=fdatasync` of the same number of
//                bytes (the tool, timed from spawn to exit) and against the same bytes written
//                from memory with write() and fdatasync() in this process ("dd-like").
//   load         open + read_into every tensor into reused buffers, against memcpy of the same
//                bytes into the same buffers; and open + map of every tensor (zero-copy).
//   open+one     opening a 1 GiB file and reading one 4 MiB tensor, or mapping one and touching
//                each of its pages: the cost of a lazy open. CPU time beside wall time, since on
//                a loaded machine wall time also counts waiting for a core.
//
// Each round runs the contenders back to back, alternating which goes first; the counters are
// medians over rounds, and the ratios are medians of per-round ratios.
//
//   bench_safetensors [--benchmark_filter=...]   (CKPT_BENCH_LARGE=1: 1 GiB state dict, else 256 MiB;
//                                                 CKPT_BENCH_ROUNDS=N rounds, default 7)
//
// Files go to CKPT_BENCH_DIR (default ./bench-tmp), which must be on a real disk.
#include "state_dict.hpp"

#include <ckpt/io.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt;

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// This process's CPU time: on a loaded machine, wall time also counts the waits for a core.
double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

size_t size_mib() { return std::getenv("CKPT_BENCH_LARGE") ? 1024 : 256; }

int rounds() {
  const char* e = std::getenv("CKPT_BENCH_ROUNDS");
  return e ? std::max(3, std::atoi(e)) : 7;
}

const fs::path& dir() {
  static const fs::path d = [] {
    const char* e = std::getenv("CKPT_BENCH_DIR");
    fs::path p = e ? e : "bench-tmp";
    fs::create_directories(p);
    return p;
  }();
  return d;
}

const Document& state(size_t mib) {
  static std::map<size_t, Document> docs;
  auto it = docs.find(mib);
  if (it == docs.end()) it = docs.emplace(mib, bench::make_state_dict(mib)).first;
  return it->second;
}

double mb(const Document& d) { return static_cast<double>(d.tensor_bytes()) / 1e6; }

// The format, its library loaded before any clock starts and kept loaded (as in a program that
// saves and loads repeatedly): otherwise every open would map and relocate the plugin again.
const Format& format() {
  static const Format f = [] {
    Format x = Registry::global().get("safetensors");
    const uint8_t head[16] = {};
    (void)x.identify(head, sizeof head);
    return x;
  }();
  return f;
}

SaveOptions safetensors_save(bool fsync) {
  SaveOptions o;
  o.fsync = fsync;
  return o;
}

// `dd` itself, from /dev/zero, with 4 MiB blocks and conv=fdatasync.
double run_dd(uint64_t bytes, const fs::path& out) {
  const uint64_t block = 4 << 20;
  const std::string cmd = "dd if=/dev/zero of='" + out.string() + "' bs=" + std::to_string(block) +
                          " count=" + std::to_string((bytes + block - 1) / block) + " conv=fdatasync status=none";
  const auto t0 = Clock::now();
  const int rc = std::system(cmd.c_str());
  const double s = seconds(t0);
  if (rc != 0) {
    std::fprintf(stderr, "bench_safetensors: '%s' failed\n", cmd.c_str());
    std::exit(1);
  }
  fs::remove(out);
  return s;
}

// What dd does, from the state dict's own buffers: write() each tensor, fdatasync, close.
double run_dd_like(const Document& doc, const fs::path& out) {
  const auto t0 = Clock::now();
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::exit(1);
  doc.for_each_tensor([&](const std::string&, const Tensor& t) {
    auto b = t.bytes();
    for (size_t o = 0; o < b.size();) {
      const ssize_t w = ::write(fd, b.data() + o, b.size() - o);
      if (w <= 0) std::exit(1);
      o += static_cast<size_t>(w);
    }
  });
  ::fdatasync(fd);
  ::close(fd);
  const double s = seconds(t0);
  fs::remove(out);
  return s;
}

double run_save(const Document& doc, const fs::path& out) {
  const auto t0 = Clock::now();
  write_document(doc, out, format(), safetensors_save(true));
  const double s = seconds(t0);
  fs::remove(out);
  return s;
}

void BM_save_fsync(benchmark::State& st) {
  const Document& doc = state(size_mib());
  const uint64_t bytes = doc.tensor_bytes();
  std::vector<double> save, dd, like, vs_dd, vs_like;
  int round = 0;
  for (auto _ : st) {
    double s = 0, d = 0, l = 0;
    // Alternate the order so that neither side always runs on a cache the other just filled.
    if (round++ % 2 == 0) {
      d = run_dd(bytes, dir() / "dd.bin");
      l = run_dd_like(doc, dir() / "like.bin");
      s = run_save(doc, dir() / "save.safetensors");
    } else {
      s = run_save(doc, dir() / "save.safetensors");
      l = run_dd_like(doc, dir() / "like.bin");
      d = run_dd(bytes, dir() / "dd.bin");
    }
    st.SetIterationTime(s);
    save.push_back(s), dd.push_back(d), like.push_back(l);
    vs_dd.push_back(s / d), vs_like.push_back(s / l);
  }
  st.counters["save_MB/s"] = mb(doc) / median(save);
  st.counters["dd_MB/s"] = mb(doc) / median(dd);
  st.counters["dd_like_MB/s"] = mb(doc) / median(like);
  st.counters["save/dd"] = median(vs_dd);
  st.counters["save/dd_like"] = median(vs_like);
}

// Reused destination buffers, as a program loading into its existing parameters has.
std::vector<std::vector<std::byte>>& buffers(const Document& doc) {
  static std::vector<std::vector<std::byte>> b;
  if (b.empty())
    doc.for_each_tensor([&](const std::string&, const Tensor& t) { b.emplace_back(t.nbytes(), std::byte{1}); });
  return b;
}

void BM_load(benchmark::State& st) {
  const Document& doc = state(size_mib());
  const fs::path p = dir() / "load.safetensors";
  write_document(doc, p, format(), safetensors_save(false));
  auto& bufs = buffers(doc);
  std::vector<double> load, map, copy, vs_memcpy;
  int round = 0;
  auto run_load = [&] {
    const auto t0 = Clock::now();
    auto r = format().open_reader(p, {});
    size_t i = 0;
    r->tree().for_each_tensor([&](const std::string& path, const Tensor&) { r->read_into(path, bufs[i++]); });
    benchmark::ClobberMemory();
    return seconds(t0);
  };
  auto run_memcpy = [&] {
    const auto t0 = Clock::now();
    size_t i = 0;
    doc.for_each_tensor([&](const std::string&, const Tensor& t) { std::memcpy(bufs[i++].data(), t.bytes().data(), t.nbytes()); });
    benchmark::ClobberMemory();
    return seconds(t0);
  };
  auto run_map = [&] {
    const auto t0 = Clock::now();
    auto r = format().open_reader(p, {});
    size_t n = 0;
    r->tree().for_each_tensor([&](const std::string& path, const Tensor&) { n += r->map(path) ? 1 : 0; });
    benchmark::DoNotOptimize(n);
    return seconds(t0);
  };
  for (auto _ : st) {
    double l = 0, c = 0;
    if (round++ % 2 == 0) {
      l = run_load();
      c = run_memcpy();
    } else {
      c = run_memcpy();
      l = run_load();
    }
    map.push_back(run_map());
    st.SetIterationTime(l);
    load.push_back(l), copy.push_back(c), vs_memcpy.push_back(l / c);
  }
  st.counters["load_MB/s"] = mb(doc) / median(load);
  st.counters["memcpy_MB/s"] = mb(doc) / median(copy);
  st.counters["load/memcpy"] = median(vs_memcpy);
  st.counters["open+map_all_ms"] = median(map) * 1e3;
  fs::remove(p);
}

// Opening a 1 GiB file and reading (or mapping and touching) one of its 4 MiB tensors.
void BM_open_one(benchmark::State& st, bool map) {
  const Document& doc = state(1024);
  const fs::path p = dir() / "one.safetensors";
  if (!fs::exists(p)) write_document(doc, p, format(), safetensors_save(false));
  // A 1024x1024 tensor from the middle of the file.
  std::string name;
  doc.find_group_path("model/state")->for_each_tensor([&](const std::string& path, const Tensor& t) {
    if (name.empty() && t.shape() == Shape{1024, 1024}) name = "model/state/" + path;
  });
  std::vector<std::byte> buf(size_t{4} << 20);
  std::vector<double> times, cpu;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    auto r = format().open_reader(p, {});
    if (map) {
      std::optional<Tensor> t = r->map(name);
      // One float per 4 KiB page: the cost of faulting the view in, not of adding 1M floats.
      const auto data = t->data<float>();
      float sum = 0;
      for (size_t i = 0; i < data.size(); i += 1024) sum += data[i];
      benchmark::DoNotOptimize(sum);
    } else {
      r->read_into(name, buf);
      benchmark::ClobberMemory();
    }
    const double s = seconds(t0);
    cpu.push_back(cpu_seconds() - c0);
    st.SetIterationTime(s);
    times.push_back(s);
  }
  st.counters["median_ms"] = median(times) * 1e3;
  st.counters["median_cpu_ms"] = median(cpu) * 1e3;
  st.counters["file_GiB"] = static_cast<double>(fs::file_size(p)) / (1 << 30);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  format();
  const int n = rounds();
  const std::string size = std::to_string(size_mib()) + "MiB";
  benchmark::RegisterBenchmark(("save+fsync_vs_dd/" + size).c_str(), BM_save_fsync)
      ->Iterations(n)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(("load_vs_memcpy/" + size).c_str(), BM_load)
      ->Iterations(n)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("open+read_one_4MiB/1GiB", BM_open_one, false)
      ->Iterations(5 * n)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("open+map_one_4MiB/1GiB", BM_open_one, true)
      ->Iterations(5 * n)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fs::remove_all(dir());
  return 0;
}
