// Save, load and open throughput of every format plugin on one state dict (model_state.hpp),
// beside the machine's own limits measured in the same process: memcpy into reused buffers,
// read() of the same bytes from the page cache into them, and write() of the same bytes into a
// new file with and without fdatasync. benchmarks/compare runs this once per round and size.
//
//   bench_formats [--size 256M] [--iterations N] [--formats json,hdf5] [--dir DIR]
//                 [--source FORMAT=FILE ...] [Google Benchmark flags]
//
// Per format (from the registry, so a new plugin is measured without changes here):
//   save/F         write_document without fsync (the page cache), a new file each time
//   save+fsync/F   the same, atomic and durable: temporary file, fsync, rename, folder fsync
//                  (each save, at 64 MiB and more three of them, between two runs of `dd
//                  if=/dev/zero bs=16M conv=fdatasync` of as many bytes, reported in the
//                  counters dd_bytes and dd_seconds: this VM's disk bursts after a pause and is
//                  throttled minutes later, so only a baseline taken beside each durable save
//                  says how close that save comes to the disk)
//   load/F         open, then read_into every tensor into buffers reused across loads, as a
//                  program loading into its existing parameters does
//   load-fresh/F   read_document(map = false): every tensor into newly allocated memory, after
//                  one untimed fresh load whose memory is freed again (peers.py does the same):
//                  on this VM memory nobody freed lately costs a host fault per page, and
//                  without it ckpt's first fresh load met that memory while the peers' loads
//                  followed a load of theirs that had just freed a gigabyte
//   open+one/F     (formats with CKPT_CAP_MAP) open the file and read its last tensor (a bias)
//                  through map, from the page cache
// Read-only formats get load/ and open+one/ on a file named with --source (the script writes
// it with Python's pickle). --iterations 0 lets Google Benchmark choose (0.5 s of runs); the
// default is 1 for 64 MiB and more (3 for save+fsync, load, memcpy and read), 0 below;
// open+one always runs for 0.2 s. Files go to --dir (default $CKPT_BENCH_DIR or ./bench-tmp),
// which must be on a real disk.
#include "model_state.hpp"

#include <ckpt/io.hpp>
#include <ckpt/plugin_abi.h>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt;

namespace {

struct Config {
  uint64_t size = uint64_t(256) << 20;
  int iterations = -1;  // -1: by size
  // save+fsync, load and the memcpy and read() they are held to: 3 where iterations is 1 by
  // size, else iterations. One 1 GiB load takes a tenth of a second, and single ones scattered
  // 0.22x-0.86x memcpy from round to round, a different format low each time.
  int repeated_iterations = -1;
  std::set<std::string> formats;  // empty: all
  fs::path dir;
  std::map<std::string, fs::path> sources;  // read-only format -> file to load
};

Config& config() {
  static Config c;
  return c;
}

const Document& state() {
  static Document d = bench::make_model_state(config().size);
  return d;
}

void set_bytes(benchmark::State& s) {
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations()) * static_cast<int64_t>(state().tensor_bytes()));
  s.counters["bytes"] = static_cast<double>(state().tensor_bytes());
}

// A tensor's name without the groups a format may or may not keep ("model/state/fc1.weight",
// "model.state.fc1.weight" and "fc1.weight" are the same parameter).
std::string parameter_name(std::string path) {
  for (char& c : path)
    if (c == '/') c = '.';
  const std::string prefix = "model.state.";
  return path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
}

// The program's parameters: one buffer per tensor, allocated and touched once, reused by every
// load of every format.
std::vector<std::byte>& parameter(const std::string& path, size_t nbytes) {
  static std::map<std::string, std::vector<std::byte>> params;
  auto& b = params[parameter_name(path)];
  if (b.size() != nbytes) b.assign(nbytes, std::byte{1});
  return b;
}

// A benchmark that throws is reported as failed (Google Benchmark does not catch).
template <class F>
void guarded(benchmark::State& s, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    s.SkipWithError(e.what());
  }
}

void write_all(int fd, std::span<const std::byte> b) {
  for (size_t o = 0; o < b.size();) {
    const ssize_t w = ::write(fd, b.data() + o, b.size() - o);
    if (w <= 0) throw std::runtime_error("write failed");
    o += static_cast<size_t>(w);
  }
}

void BM_memcpy(benchmark::State& s) {
  std::vector<std::pair<const Tensor*, std::vector<std::byte>*>> pairs;
  state().for_each_tensor([&](const std::string& p, const Tensor& t) { pairs.emplace_back(&t, &parameter(p, t.nbytes())); });
  for (auto _ : s) {
    for (auto& [t, b] : pairs) std::memcpy(b->data(), t->bytes().data(), t->nbytes());
    benchmark::ClobberMemory();
  }
  set_bytes(s);
}

// Before a timed write with fdatasync: nothing else dirty on the system, no discard of a
// removed file's blocks pending, so the disk serves only the write being timed (dd and the
// peers start the same way).
void settle() { ::sync(); }

void BM_write_raw(benchmark::State& s, bool durable) {
  const fs::path p = config().dir / "raw.bin";
  if (durable) settle();
  for (auto _ : s) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + p.string());
    state().for_each_tensor([&](const std::string&, const Tensor& t) { write_all(fd, t.bytes()); });
    if (durable) ::fdatasync(fd);
    ::close(fd);
    s.PauseTiming();
    fs::remove(p);  // each save writes a new file, as an atomic save does
    if (durable) settle();
    s.ResumeTiming();
  }
  set_bytes(s);
}

// dd itself (not a copy of what it does), so that the goal "save+fsync >= 0.8x dd" is checked
// against the tool it names. Wall-clock seconds, its start (about a millisecond) included.
double run_dd() {
  const fs::path p = config().dir / "dd.bin";
  const uint64_t bytes = state().tensor_bytes();
  const std::string of = "of=" + p.string(), count = "count=" + std::to_string(bytes),
                    bs = "bs=" + std::to_string(std::min<uint64_t>(bytes, uint64_t(16) << 20));
  const char* argv[] = {"dd",     "if=/dev/zero",      of.c_str(),       bs.c_str(),
                        count.c_str(), "iflag=count_bytes", "conv=fdatasync", "status=none", nullptr};
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  posix_spawn_file_actions_addopen(&io, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  settle();
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "dd", &io, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&io);
  if (spawned != 0) throw std::runtime_error("cannot start dd");
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("dd " + of + " failed");
  const std::chrono::duration<double> t = std::chrono::steady_clock::now() - t0;
  fs::remove(p);
  settle();
  return t.count();
}

// read() of the same bytes, tensor by tensor, from the page cache into the reused buffers.
void BM_read_raw(benchmark::State& s) {
  const fs::path p = config().dir / "raw-read.bin";
  std::vector<std::vector<std::byte>*> bufs;
  {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    state().for_each_tensor([&](const std::string& path, const Tensor& t) {
      write_all(fd, t.bytes());
      bufs.push_back(&parameter(path, t.nbytes()));
    });
    ::close(fd);
  }
  for (auto _ : s) {
    const int fd = ::open(p.c_str(), O_RDONLY);
    for (auto* b : bufs)
      for (size_t o = 0; o < b->size();) {
        const ssize_t r = ::read(fd, b->data() + o, b->size() - o);
        if (r <= 0) throw std::runtime_error("short read");
        o += static_cast<size_t>(r);
      }
    ::close(fd);
    benchmark::ClobberMemory();
  }
  fs::remove(p);
  set_bytes(s);
}

fs::path file_for(const Format& f, const std::string& tag) {
  return config().dir / ("bench-" + tag + f.info().extensions.at(0));
}

// The file that loads read: written once by a writable format, else --source.
fs::path load_file(const Format& f) {
  if (!f.info().can(CKPT_CAP_WRITE)) return config().sources.at(f.name());
  const fs::path p = file_for(f, "load");
  // Written durably: a dirty fixture would be written back by the kernel while later
  // formats' saves with fsync are timed, and share the disk with them.
  if (!fs::exists(p)) write_document(state(), p, f, {.fsync = true});
  return p;
}

void BM_save(benchmark::State& s, Format f, bool durable) {
  const fs::path p = file_for(f, "save");
  SaveOptions o;
  o.fsync = durable;
  double dd_seconds = durable ? run_dd() : 0;
  int dd_runs = durable ? 1 : 0;
  for (auto _ : s) {
    write_document(state(), p, f, o);
    s.PauseTiming();
    fs::remove(p);
    if (durable) {
      dd_seconds += run_dd();
      ++dd_runs;
    }
    s.ResumeTiming();
  }
  set_bytes(s);
  if (durable) {
    s.counters["dd_bytes"] = static_cast<double>(dd_runs) * static_cast<double>(state().tensor_bytes());
    s.counters["dd_seconds"] = dd_seconds;
  }
}

void BM_load(benchmark::State& s, Format f) {
  const fs::path p = load_file(f);
  uint64_t bytes = 0;
  {
    auto r = f.open_reader(p, {});
    r->tree().for_each_tensor([&](const std::string& path, const Tensor& t) {
      parameter(path, t.nbytes());
      bytes += t.nbytes();
    });
  }
  for (auto _ : s) {
    auto r = f.open_reader(p, {});
    r->tree().for_each_tensor([&](const std::string& path, const Tensor& t) {
      r->read_into(path, parameter(path, t.nbytes()));
    });
    benchmark::ClobberMemory();
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * bytes));
  s.counters["bytes"] = static_cast<double>(bytes);
}

void BM_load_fresh(benchmark::State& s, Format f) {
  const fs::path p = load_file(f);
  LoadOptions o;
  o.format = f.name();
  o.map = false;
  uint64_t bytes = 0;
  { Document warm = read_document(p, o); }
  for (auto _ : s) {
    Document d = read_document(p, o);
    bytes = d.tensor_bytes();
    benchmark::DoNotOptimize(d);
  }
  s.SetBytesProcessed(static_cast<int64_t>(s.iterations() * bytes));
  s.counters["bytes"] = static_cast<double>(bytes);
}

void BM_open_one_tensor(benchmark::State& s, Format f) {
  const fs::path p = load_file(f);
  std::string last;
  f.open_reader(p, {})->tree().for_each_tensor([&](const std::string& path, const Tensor&) { last = path; });
  bool mapped = true;
  for (auto _ : s) {
    auto r = f.open_reader(p, {});
    auto m = r->map(last);
    const Tensor t = m ? *m : r->read(last);
    mapped = mapped && m.has_value();
    unsigned sum = 0;
    for (std::byte b : t.bytes()) sum += static_cast<unsigned>(b);
    benchmark::DoNotOptimize(sum);
  }
  s.counters["mapped"] = mapped ? 1 : 0;
}

// Loads the format's plugin and makes its first calls (one small save and load), so that the
// first measured iteration does not pay for dlopen.
void warm_up(const Format& f) {
  Document tiny;
  tiny.group("model").group("state").add_tensor("w", Tensor::zeros(DType::f32, {4, 4}));
  const fs::path p = file_for(f, "warm-up");
  try {
    if (f.info().can(CKPT_CAP_WRITE)) {
      write_document(tiny, p, f, {.fsync = false});
      LoadOptions o;
      o.format = f.name();
      read_document(p, o);
      fs::remove(p);
    } else if (config().sources.count(f.name())) {
      f.open_reader(config().sources.at(f.name()), {})->tree();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_formats: warming up %s: %s\n", f.name().c_str(), e.what());
  }
}

void usage() {
  std::fprintf(stderr,
               "usage: bench_formats [--size 256M] [--iterations N] [--formats a,b] [--dir DIR] "
               "[--source FORMAT=FILE ...] [Google Benchmark flags]\n");
}

// Takes our flags out of argv, leaving Google Benchmark's.
bool parse_args(int& argc, char** argv) {
  Config& c = config();
  if (std::getenv("CKPT_BENCH_LARGE")) c.size = uint64_t(1) << 30;
  const char* env = std::getenv("CKPT_BENCH_DIR");
  c.dir = env ? env : "bench-tmp";
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--size") c.size = bench::parse_size(value());
    else if (a == "--iterations") c.iterations = std::atoi(value().c_str());
    else if (a == "--dir") c.dir = value();
    else if (a == "--formats") {
      const std::string v = value();
      for (size_t b = 0, e; b <= v.size(); b = e + 1) {
        e = v.find(',', b);
        if (e == std::string::npos) e = v.size();
        if (e > b) c.formats.insert(v.substr(b, e - b));
      }
    } else if (a == "--source") {
      const std::string v = value();
      const size_t eq = v.find('=');
      if (eq == std::string::npos) return false;
      c.sources[v.substr(0, eq)] = v.substr(eq + 1);
    } else if (a == "--help" || a == "-h") {
      return false;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  const bool by_size = c.iterations < 0;
  if (by_size) c.iterations = c.size >= (uint64_t(64) << 20) ? 1 : 0;
  c.repeated_iterations = by_size && c.iterations == 1 ? 3 : c.iterations;
  fs::create_directories(c.dir);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (!parse_args(argc, argv)) {
      usage();
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_formats: %s\n", e.what());
    usage();
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  const Config& c = config();
  auto reg = [&](const std::string& name, auto fn, auto... args) {
    auto run = [fn, args...](benchmark::State& s) { guarded(s, [&] { fn(s, args...); }); };
    auto* b = benchmark::RegisterBenchmark(name.c_str(), run)->Unit(benchmark::kMillisecond)->UseRealTime();
    // Opening takes milliseconds at any size: as many runs as fit in 0.2 s.
    const bool repeated = name.rfind("save+fsync/", 0) == 0 || name.rfind("load/", 0) == 0 ||
                          name == "limit/memcpy" || name == "limit/read";
    const int n = repeated ? c.repeated_iterations : c.iterations;
    if (n > 0 && name.rfind("open+one/", 0) != 0) b->Iterations(n);
    else b->MinTime(name.rfind("open+one/", 0) == 0 ? 0.2 : 0.5);
  };
  reg("limit/memcpy", BM_memcpy);
  reg("limit/read", BM_read_raw);
  reg("limit/write", BM_write_raw, false);
  reg("limit/write+fdatasync", BM_write_raw, true);
  for (const Format& f : Registry::global().formats()) {
    if (!c.formats.empty() && !c.formats.count(f.name())) continue;
    const bool writes = f.info().can(CKPT_CAP_WRITE), reads = f.info().can(CKPT_CAP_READ);
    if (!reads || (!writes && !c.sources.count(f.name()))) continue;
    warm_up(f);
    if (writes) {
      reg("save/" + f.name(), BM_save, f, false);
      reg("save+fsync/" + f.name(), BM_save, f, true);
    }
    reg("load/" + f.name(), BM_load, f);
    reg("load-fresh/" + f.name(), BM_load_fresh, f);
    if (f.info().can(CKPT_CAP_MAP)) reg("open+one/" + f.name(), BM_open_one_tensor, f);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const Format& f : Registry::global().formats())
    if (f.info().can(CKPT_CAP_WRITE)) fs::remove(file_for(f, "load"));
  return 0;
}
