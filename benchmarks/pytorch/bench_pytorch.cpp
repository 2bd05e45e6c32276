// Save and load of a state dict through the pytorch plugin, beside torch.save and torch.load of
// the same tensors, interleaved in the same run. torch runs in one /usr/bin/python3 process that
// stays up for the whole run (torch_peer.py); every iteration times each side once, taking
// turns on which goes first, so whatever else the machine does hits both alike. Google
// Benchmark's time is ckpt's; the counters are the medians of every side as MB/s (10^6 bytes of
// tensor data per second) and, as `x_*`, how many times faster ckpt is than torch (median of the
// per-iteration ratios).
//
//   bench_pytorch [--benchmark_filter=/1024] [google benchmark flags]
//
// Save/N: ckpt's save (atomic: temporary file, fsync, rename, fsync of the folder) against
//   torch.save followed by an fsync of the file; and both without fsync (the page cache only:
//   ckpt with SaveOptions::fsync = false, torch.save as users call it).
// Load/N: ckpt and torch.load reading the file torch.save wrote, every tensor into new memory
//   (ckpt with LoadOptions::map = false); torch.load with weights_only=True as well; ckpt
//   mapping the file instead (tensors are views of the page cache, nothing is copied), and
//   ckpt reading the file it wrote itself.
//
// N is 256 and 1024 MiB: the GPT-style decoder state dicts of ../model_state.hpp (256.6 and
// 1018 MiB of f32 random bits), at the root of the document, so that ckpt writes the same
// plain state dict (an OrderedDict of tensors) that torch.save writes. Files go to
// CKPT_BENCH_DIR (default ./bench-tmp), which must be on a real disk; loads read files just
// written, so both sides read from the page cache. CKPT_BENCH_REPS sets the iterations (5).
#include "model_state.hpp"

#include <ckpt/io.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

fs::path bench_dir() {
  const char* env = std::getenv("CKPT_BENCH_DIR");
  fs::path dir = env ? env : "bench-tmp";
  fs::create_directories(dir);
  return dir;
}

int64_t reps() {
  const char* env = std::getenv("CKPT_BENCH_REPS");
  return env ? std::max(1, std::atoi(env)) : 5;
}

// torch_peer.py as a child process with a pipe each way.
class TorchPeer {
 public:
  TorchPeer() {
    // Close-on-exec, so that a peer started later does not inherit this one's stdin and keep
    // it from ever seeing the end of its input.
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::close(to_child[1]);
      ::close(from_child[0]);
      const std::string script = std::string(CKPT_BENCH_SOURCE_DIR) + "/torch_peer.py";
      ::execl("/usr/bin/python3", "python3", script.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = ::fdopen(to_child[1], "w");
    out_ = ::fdopen(from_child[0], "r");
  }
  ~TorchPeer() {
    std::fclose(in_);  // end of input: the peer exits
    std::fclose(out_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  TorchPeer(const TorchPeer&) = delete;
  TorchPeer& operator=(const TorchPeer&) = delete;

  // Sends one command; returns the numbers of its "ok ..." answer.
  std::vector<double> ask(const std::string& command) {
    std::fprintf(in_, "%s\n", command.c_str());
    std::fflush(in_);
    char line[256];
    if (!std::fgets(line, sizeof line, out_) || std::strncmp(line, "ok", 2) != 0)
      throw std::runtime_error("torch_peer.py failed on '" + command + "' (needs python3-torch)");
    std::vector<double> v;
    char* p = line + 2;
    for (char* end = nullptr;; p = end) {
      const double x = std::strtod(p, &end);
      if (end == p) break;
      v.push_back(x);
    }
    return v;
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

// One state dict, its files and the peer that holds the same tensors.
struct Fixture {
  Document doc;
  double bytes = 0;
  fs::path ours, theirs, scratch;
  std::unique_ptr<TorchPeer> peer;
};

std::map<size_t, Fixture>& fixtures() {
  static std::map<size_t, Fixture> all;
  return all;
}

Fixture& fixture(size_t mib) {
  Fixture& f = fixtures()[mib];
  if (f.peer) return f;
  const Document state = bench::make_model_state(uint64_t(mib) << 20);
  state.find_group_path("model/state")->for_each_tensor([&](const std::string& name, const Tensor& t) {
    f.doc.add_tensor(name, t);  // a view: the bytes are shared, not copied
  });
  f.bytes = static_cast<double>(f.doc.tensor_bytes());
  const fs::path dir = bench_dir();
  const std::string n = std::to_string(mib);
  f.ours = dir / ("ckpt_" + n + ".pt");
  f.theirs = dir / ("torch_" + n + ".pt");
  f.scratch = dir / ("scratch_" + n + ".pt");
  SaveOptions o;
  o.format = "pytorch";
  write_document(f.doc, f.ours, o);
  f.peer = std::make_unique<TorchPeer>();
  const auto init = f.peer->ask("init " + f.ours.string());
  if (init.size() != 2 || init[1] != f.bytes) throw std::runtime_error("torch read another state dict than ckpt wrote");
  f.peer->ask("save " + f.theirs.string() + " 1");
  return f;
}

// Runs the sides of one iteration, first to last on even iterations and last to first on odd
// ones, recording each side's seconds.
using Side = std::function<double()>;
void take_turns(int64_t iteration, std::vector<std::pair<Side, std::vector<double>*>>& sides) {
  if (iteration % 2) std::reverse(sides.begin(), sides.end());
  for (auto& [run, times] : sides) times->push_back(run());
  if (iteration % 2) std::reverse(sides.begin(), sides.end());
}

void report(benchmark::State& state, double bytes, const std::map<std::string, const std::vector<double>*>& rates,
            const std::map<std::string, std::pair<const std::vector<double>*, const std::vector<double>*>>& ratios) {
  for (const auto& [name, v] : rates) state.counters[name] = benchmark::Counter(bytes / 1e6 / median(*v));
  for (const auto& [name, pair] : ratios) {
    std::vector<double> r;
    for (size_t i = 0; i < pair.first->size(); ++i) r.push_back((*pair.second)[i] / (*pair.first)[i]);
    state.counters[name] = benchmark::Counter(median(r));
  }
}

void Save(benchmark::State& state) {
  Fixture& f = fixture(static_cast<size_t>(state.range(0)));
  SaveOptions synced, unsynced;
  synced.format = unsynced.format = "pytorch";
  unsynced.fsync = false;
  std::vector<double> ckpt_s, torch_s, ckpt_nosync, torch_nosync;
  auto ours = [&](const SaveOptions& o) {
    return [&f, &o] {
      const auto t0 = std::chrono::steady_clock::now();
      write_document(f.doc, f.scratch, o);
      return seconds_since(t0);
    };
  };
  auto theirs = [&](bool sync) {
    return [&f, sync] { return f.peer->ask("save " + f.scratch.string() + (sync ? " 1" : " 0")).at(0); };
  };
  std::vector<std::pair<Side, std::vector<double>*>> sides = {
      {ours(synced), &ckpt_s}, {theirs(true), &torch_s}, {ours(unsynced), &ckpt_nosync}, {theirs(false), &torch_nosync}};
  int64_t i = 0;
  for (auto _ : state) {
    take_turns(i++, sides);
    state.SetIterationTime(ckpt_s.back());
    std::fprintf(stderr, "save %lld MiB: ckpt %.3f s, torch.save+fsync %.3f s | no fsync: ckpt %.3f s, torch.save %.3f s\n",
                 static_cast<long long>(state.range(0)), ckpt_s.back(), torch_s.back(), ckpt_nosync.back(), torch_nosync.back());
  }
  report(state, f.bytes,
         {{"ckpt_save_MB/s", &ckpt_s}, {"torch_save_MB/s", &torch_s}, {"ckpt_nofsync_MB/s", &ckpt_nosync},
          {"torch_nofsync_MB/s", &torch_nosync}},
         {{"x_save", {&ckpt_s, &torch_s}}, {"x_save_nofsync", {&ckpt_nosync, &torch_nosync}}});
  fs::remove(f.scratch);
}

void Load(benchmark::State& state) {
  Fixture& f = fixture(static_cast<size_t>(state.range(0)));
  LoadOptions copied, mapped;
  copied.format = mapped.format = "pytorch";
  copied.map = false;
  std::vector<double> ckpt_s, torch_s, torch_wo, ckpt_mapped, ckpt_own;
  auto ours = [&](const fs::path& p, const LoadOptions& o) {
    return [&f, &p, &o] {
      const auto t0 = std::chrono::steady_clock::now();
      Document back = read_document(p, o);
      const double s = seconds_since(t0);
      if (back.tensor_bytes() != f.doc.tensor_bytes()) throw std::runtime_error("ckpt read another state dict");
      return s;
    };
  };
  auto theirs = [&](bool weights_only) {
    return [&f, weights_only] { return f.peer->ask("load " + f.theirs.string() + (weights_only ? " 1" : " 0")).at(0); };
  };
  std::vector<std::pair<Side, std::vector<double>*>> sides = {{ours(f.theirs, copied), &ckpt_s},
                                                              {theirs(false), &torch_s},
                                                              {ours(f.theirs, mapped), &ckpt_mapped},
                                                              {theirs(true), &torch_wo},
                                                              {ours(f.ours, copied), &ckpt_own}};
  int64_t i = 0;
  for (auto _ : state) {
    take_turns(i++, sides);
    state.SetIterationTime(ckpt_s.back());
    std::fprintf(stderr,
                 "load %lld MiB: ckpt %.3f s, torch.load %.3f s, weights_only %.3f s | ckpt mapped %.3f s, ckpt's own "
                 "file %.3f s\n",
                 static_cast<long long>(state.range(0)), ckpt_s.back(), torch_s.back(), torch_wo.back(), ckpt_mapped.back(),
                 ckpt_own.back());
  }
  report(state, f.bytes,
         {{"ckpt_load_MB/s", &ckpt_s}, {"torch_load_MB/s", &torch_s}, {"torch_weights_only_MB/s", &torch_wo},
          {"ckpt_mapped_MB/s", &ckpt_mapped}, {"ckpt_own_file_MB/s", &ckpt_own}},
         {{"x_load", {&ckpt_s, &torch_s}}, {"x_load_weights_only", {&ckpt_s, &torch_wo}}});
}

// Each size's saves, then its loads (which reuse its files and peer), before the next size.
BENCHMARK(Save)->Arg(256)->Iterations(reps())->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(Load)->Arg(256)->Iterations(reps())->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(Save)->Arg(1024)->Iterations(reps())->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(Load)->Arg(1024)->Iterations(reps())->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& [mib, f] : fixtures()) {
    f.peer.reset();
    for (const fs::path& p : {f.ours, f.theirs, f.scratch}) fs::remove(p);
  }
  return 0;
}
