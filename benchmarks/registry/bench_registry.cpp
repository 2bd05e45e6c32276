// bench_registry [--gib N] [--rounds R] [--versions V] [--dir D] [--keep 1]
//
// 1. Register and pull a checkpoint of N GiB (64 f32 tensors and one of 4 MiB, safetensors)
//    beside `cp FILE COPY && sync`, interleaved within each round, ratios taken within a round,
//    medians reported.
// 2. Register a version that differs from the previous in the 4 MiB tensor: bytes written as
//    /proc/self/io counts them (write_bytes: sent towards storage; wchar: passed to write()),
//    and its time against a full registration.
// 3. `list NAME` and `show NAME/V` on an SQLite registry of V versions.
#include "timing.hpp"

#include <ckpt/document.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;
namespace mr = ckpt::model_registry;
using ckpt::bench::median;
using ckpt::bench::seconds_since;
using Clock = std::chrono::steady_clock;

namespace {

struct Io {
  uint64_t wchar = 0, write_bytes = 0;
};

Io read_io() {
  Io io;
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "wchar:") io.wchar = value;
    if (key == "write_bytes:") io.write_bytes = value;
  }
  return io;
}

ckpt::Document make_document(double gib, float salt) {
  ckpt::Document doc;
  auto& state = doc.group("model").group("state");
  const size_t small = 4u << 20;  // bytes
  const uint64_t total = static_cast<uint64_t>(gib * (1ull << 30)) - small;
  const size_t per = static_cast<size_t>(total / 64 / 4);  // floats per tensor
  for (int i = 0; i < 64; ++i) {
    auto t = ckpt::Tensor::empty(ckpt::DType::f32, {static_cast<int64_t>(per)});
    auto v = t.mutable_data<float>();
    for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(i * 7 + static_cast<int>(k % 1021));
    state.add_tensor("backbone." + std::to_string(i) + ".weight", t);
  }
  auto head = ckpt::Tensor::empty(ckpt::DType::f32, {static_cast<int64_t>(small / 4)});
  auto v = head.mutable_data<float>();
  for (size_t k = 0; k < v.size(); ++k) v[k] = salt + static_cast<float>(k % 97);
  state.add_tensor("head.weight", head);
  doc.group("trainer").group("metrics").set("test_accuracy", 0.5 + salt / 1000);
  return doc;
}

}  // namespace

int main(int argc, char** argv) {
  double gib = 1;
  int rounds = 5;
  int versions = 10000;
  bool keep = false;  // --keep 1: leave the folder (and its 10,000-version registry) behind
  fs::path dir = fs::temp_directory_path() / ("ckpt-bench-registry-" + std::to_string(::getpid()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--gib") gib = std::atof(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--versions") versions = std::atoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--keep") keep = std::string(argv[i + 1]) == "1";
    else {
      std::fprintf(stderr, "usage: bench_registry [--gib N] [--rounds R] [--versions V] [--dir D] [--keep 1]\n");
      return 2;
    }
  }
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(d, ec);
    }
  } cleanup{dir, keep};

  const fs::path src = dir / "model.safetensors", src2 = dir / "model-2.safetensors";
  {
    ckpt::SaveOptions o;
    ckpt::write_document(make_document(gib, 1), src, o);
    ckpt::write_document(make_document(gib, 2), src2, o);
  }
  const uint64_t bytes = fs::file_size(src);
  std::printf("checkpoint: %s, %.3f GiB, 65 tensors\n", src.c_str(), static_cast<double>(bytes) / (1ull << 30));

  // Each round: cp + sync, register, pull, cp + sync again, pull again, register of the copy with
  // one tensor changed. A ratio is taken within its round (against the mean of the round's two
  // cp + sync), so that load that comes and goes on a shared machine hits both sides alike;
  // medians over the rounds are reported.
  std::vector<double> t_cp, t_reg, t_pull, t_diff, r_reg, r_pull, r_diff;
  std::vector<Io> diff_io;
  auto cp_sync = [&] {
    const auto t0 = Clock::now();
    const std::string cmd = "cp " + src.string() + " " + (dir / "copy.safetensors").string() + " && sync";
    if (std::system(cmd.c_str()) != 0) std::exit(1);
    const double t = seconds_since(t0);
    fs::remove(dir / "copy.safetensors");
    t_cp.push_back(t);
    return t;
  };
  for (int r = 0; r < rounds; ++r) {
    const std::string uri = "sqlite://" + (dir / ("r" + std::to_string(r)) / "registry.db").string();
    auto reg = mr::ModelRegistry::open(uri, mr::ModelRegistry::Open::create);
    mr::RegisterOptions o;
    o.name = "big";
    auto pull = [&] {
      const auto t0 = Clock::now();
      reg->pull(mr::parse_ref("big/1"), dir / "pulled.safetensors");
      const double t = seconds_since(t0);
      fs::remove(dir / "pulled.safetensors");
      t_pull.push_back(t);
      return t;
    };

    const double cp1 = cp_sync();
    auto t0 = Clock::now();
    reg->register_checkpoint(src, o);
    const double reg_s = seconds_since(t0);
    t_reg.push_back(reg_s);
    const double pull1 = pull();
    const double cp2 = cp_sync();
    const double pull2 = pull();
    const double cp = (cp1 + cp2) / 2;
    r_reg.push_back(cp / reg_s);
    r_pull.push_back(cp / pull1);
    r_pull.push_back(cp / pull2);

    const Io before = read_io();
    t0 = Clock::now();
    const auto v2 = reg->register_checkpoint(src2, o);
    t_diff.push_back(seconds_since(t0));
    const Io after = read_io();
    r_diff.push_back(t_diff.back() / reg_s);
    diff_io.push_back({after.wchar - before.wchar, after.write_bytes - before.write_bytes});
    if (v2.bytes_written != (4u << 20)) std::fprintf(stderr, "unexpected: %llu new bytes\n", static_cast<unsigned long long>(v2.bytes_written));
    std::printf("round %d: cp+sync %.3f/%.3f s, register %.3f s, pull %.3f/%.3f s, register 1 diff %.3f s\n", r, cp1, cp2,
                reg_s, pull1, pull2, t_diff.back());
    reg.reset();
    fs::remove_all(dir / ("r" + std::to_string(r)));
  }
  const double cp = median(t_cp);
  std::printf("medians over %d rounds (ratios within each round):\n", rounds);
  std::printf("cp + sync        %.3f s  (%.0f MiB/s)\n", cp, static_cast<double>(bytes) / cp / (1 << 20));
  std::printf("register         %.3f s  %.2fx cp+sync (target >= 0.7x)\n", median(t_reg), median(r_reg));
  std::printf("pull             %.3f s  %.2fx cp+sync (target >= 0.8x)\n", median(t_pull), median(r_pull));
  std::printf("register 1 diff  %.3f s  %.1f%% of a full registration (target < 5%%); written: wchar %.2f MiB, "
              "write_bytes %.2f MiB (last round)\n",
              median(t_diff), 100 * median(r_diff), static_cast<double>(diff_io.back().wchar) / (1 << 20),
              static_cast<double>(diff_io.back().write_bytes) / (1 << 20));

  // list / show on a registry of many versions: registered from one small file (the blobs are
  // shared, the rows are not).
  {
    const std::string uri = "sqlite://" + (dir / "many" / "registry.db").string();
    auto reg = mr::ModelRegistry::open(uri, mr::ModelRegistry::Open::create);
    ckpt::Document small;
    small.group("model").group("state").add_tensor("w", ckpt::Tensor::from<float>(ckpt::DType::f32, {4}, {1, 2, 3, 4}));
    small.group("trainer").group("metrics").set("test_accuracy", 0.9);
    const fs::path f = dir / "small.safetensors";
    ckpt::write_document(small, f);
    mr::RegisterOptions o;
    o.name = "many";
    o.fsync = false;
    auto t0 = Clock::now();
    for (int i = 0; i < versions; ++i) reg->register_checkpoint(f, o);
    const double fill = seconds_since(t0);
    reg->set_alias("many", "production", versions / 2);
    std::vector<double> t_list, t_show, t_open;
    for (int r = 0; r < 5; ++r) {
      t0 = Clock::now();
      auto fresh = mr::ModelRegistry::open(uri);
      t_open.push_back(seconds_since(t0));
      t0 = Clock::now();
      const auto all = fresh->list_versions("many");
      t_list.push_back(seconds_since(t0));
      if (all.size() != static_cast<size_t>(versions)) return 1;
      t0 = Clock::now();
      fresh->show(mr::parse_ref("many@production"));
      t_show.push_back(seconds_since(t0));
    }
    std::printf("%d versions registered in %.1f s (%.1f ms each, no fsync)\n", versions, fill, 1000 * fill / versions);
    std::printf("open %.1f ms, list %.1f ms, show %.1f ms (targets: < 50 ms)\n", 1000 * median(t_open),
                1000 * median(t_list), 1000 * median(t_show));
    if (keep) std::printf("kept: %s\n", uri.c_str());
  }
  return 0;
}
