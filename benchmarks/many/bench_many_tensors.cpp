// A checkpoint of many tiny tensors (a mixture-of-experts state dict has 90k+; this one has a
// million by default, CKPT_BENCH_TENSORS to change it): what it costs to open and list it
// (`ckpt inspect`) and to convert it. Goals (issue 19): inspect under 1 s and convert under
// 10 s for a million tensors on the 2-core development machine. The file is a plain
// safetensors file written here byte by byte, as another tool would write it.
#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

uint64_t tensor_count() {
  const char* e = std::getenv("CKPT_BENCH_TENSORS");
  return e && *e ? std::strtoull(e, nullptr, 10) : 1'000'000;
}

struct Fixture {
  fs::path dir;
  fs::path file;
  uint64_t tensors;
  Fixture() : tensors(tensor_count()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = fs::path(tmp && *tmp ? tmp : "/tmp") / ("ckpt-bench-many-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    file = dir / "experts.safetensors";
    // layers.<l>.experts.<e>.w: one f32 each, 1,000 per layer.
    std::string header = "{";
    header.reserve(tensors * 80);
    for (uint64_t i = 0; i < tensors; ++i) {
      if (i) header += ',';
      header += "\"layers." + std::to_string(i / 1000) + ".experts." + std::to_string(i % 1000) +
                ".w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" + std::to_string(4 * i) + "," +
                std::to_string(4 * i + 4) + "]}";
    }
    header += '}';
    header.append((8 - header.size() % 8) % 8, ' ');
    std::ofstream out(file, std::ios::binary);
    const uint64_t n = header.size();
    for (int k = 0; k < 8; ++k) out.put(static_cast<char>((n >> (8 * k)) & 0xff));
    out << header;
    const std::string data(4 * tensors, '\0');
    out << data;
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_Inspect(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) {
    auto reader = ckpt::open(f.file);
    benchmark::DoNotOptimize(reader->tree().tensor_count());
  }
  state.counters["tensors"] = static_cast<double>(f.tensors);
}

void BM_Convert(benchmark::State& state, const char* ext) {
  Fixture& f = fixture();
  const fs::path out = f.dir / (std::string("out") + ext);
  for (auto _ : state) {
    try {
      ckpt::ConvertReport r = ckpt::convert(f.file, out);
      benchmark::DoNotOptimize(r.tensors);
    } catch (const std::exception& e) {
      // A format that cannot hold this many tensors says so (pytorch: its pickle's object bound).
      state.SkipWithError(e.what());
      break;
    }
  }
  state.counters["tensors"] = static_cast<double>(f.tensors);
}

}  // namespace

BENCHMARK(BM_Inspect)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_Convert, msgpack, ".msgpack")->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Convert, safetensors, ".safetensors")->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Convert, pytorch, ".pt")->Unit(benchmark::kMillisecond)->Iterations(1);

BENCHMARK_MAIN();
