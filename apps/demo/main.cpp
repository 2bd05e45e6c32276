// The main job until the trainer lands: builds a checkpoint shaped like a real one (an MLP's
// weights, SGD momentum buffers, trainer state), saves it with every installed format,
// converts every format into every other, verifies and diffs each result against the
// original, and prints a table.
#include <ckpt/convert.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string_view>

namespace {

using clock_type = std::chrono::steady_clock;
double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

ckpt::Checkpoint make_checkpoint() {
  ckpt::Checkpoint c;
  std::mt19937 rng(42);
  const std::vector<int64_t> sizes = {784, 256, 128, 10};
  ckpt::Group& layers = c.model_spec.group("layers");
  c.model_spec.set("type", "mlp");
  c.optimizer.set("type", "sgd");
  c.optimizer.set("lr", 0.05);
  c.optimizer.set("momentum", 0.9);
  c.optimizer.set("step", int64_t{1200});
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    std::string name = "fc" + std::to_string(i + 1);
    ckpt::Group& l = layers.add_group(std::to_string(i));
    l.set("type", "linear");
    l.set("name", name);
    l.set("in_features", sizes[i]);
    l.set("out_features", sizes[i + 1]);
    // Glorot-uniform, as a freshly initialised Linear layer would be.
    float bound = std::sqrt(6.0f / static_cast<float>(sizes[i] + sizes[i + 1]));
    std::uniform_real_distribution<float> u(-bound, bound);
    auto w = ckpt::Tensor::empty(ckpt::DType::f32, {sizes[i + 1], sizes[i]});
    for (float& x : w.mutable_data<float>()) x = u(rng);
    auto b = ckpt::Tensor::zeros(ckpt::DType::f32, {sizes[i + 1]});
    auto mw = ckpt::Tensor::empty(ckpt::DType::f32, w.shape());
    for (float& x : mw.mutable_data<float>()) x = u(rng) * 0.01f;
    c.model_state.add_tensor(name + ".weight", w);
    c.model_state.add_tensor(name + ".bias", b);
    c.optimizer.group("state").group(name + ".weight").add_tensor("momentum_buffer", mw);
  }
  c.trainer.set("epoch", int64_t{3});
  c.trainer.set("step", int64_t{1200});
  c.trainer.set("loss", 0.4123);
  c.trainer.set("rng_state", std::vector<int64_t>{12345, 67890});
  c.user.set("dataset", "fashion-mnist");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  // An option is never taken for the output folder (a run of `ckpt-demo --help` once filled a
  // folder named --help).
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    std::fprintf(argc == 2 && std::string_view(argv[1]) == "--help" ? stdout : stderr,
                 "usage: %s [OUTPUT_FOLDER]  (default demo-out): saves a checkpoint in every installed format, "
                 "converts each into every other, verifies and diffs them\n", argv[0]);
    return argc == 2 && std::string_view(argv[1]) == "--help" ? 0 : 2;
  }
  std::filesystem::path dir = argc > 1 ? argv[1] : "demo-out";
  try {
    std::filesystem::create_directories(dir);
    const ckpt::Registry& reg = ckpt::Registry::global();
    std::vector<ckpt::Format> formats;
    for (const auto& f : reg.formats())
      if (f.info().can(CKPT_CAP_READ) && f.info().can(CKPT_CAP_WRITE)) formats.push_back(f);
    if (formats.empty()) throw ckpt::PluginError("no format plugins found");

    ckpt::Checkpoint original = make_checkpoint();
    std::printf("checkpoint: %zu tensors, %.1f MiB; formats: %zu\n\n",
                original.model_state.tensor_count() + original.optimizer.tensor_count(),
                static_cast<double>(original.model_state.tensor_bytes() + original.optimizer.tensor_bytes()) / (1 << 20),
                formats.size());
    int name_width = 9;  // as wide as the longest format name, so that plugins added later line up
    for (const auto& f : formats) name_width = std::max(name_width, static_cast<int>(f.name().size()));
    std::printf("%-*s %10s %9s %9s %-8s %s\n", name_width, "format", "bytes", "save ms", "load ms", "verify",
                "converted to (verified, identical)");
    int failures = 0;
    for (const auto& f : formats) {
      auto path = dir / ("model" + f.info().extensions.at(0));
      auto t0 = clock_type::now();
      ckpt::SaveOptions so;
      so.format = f.name();
      ckpt::save(original, path, so);
      double save_ms = ms_since(t0);
      t0 = clock_type::now();
      ckpt::LoadOptions lo;
      lo.verify = true;
      ckpt::Checkpoint back = ckpt::load(path, lo);
      double load_ms = ms_since(t0);
      auto rep = ckpt::verify(*ckpt::open(path));
      bool same = ckpt::diff_documents(original.to_document(), back.to_document()).identical();
      std::string conv;
      for (const auto& g : formats) {
        if (g.name() == f.name()) continue;
        auto out = dir / ("model-from-" + f.name() + g.info().extensions.at(0));
        ckpt::ConvertOptions co;
        co.to = g.name();
        ckpt::convert(path, out, co);
        bool ok = ckpt::verify(*ckpt::open(out)).ok() && ckpt::diff(path, out).identical();
        conv += g.name() + (ok ? " ok  " : " FAIL  ");
        failures += !ok;
      }
      bool ok = rep.ok() && rep.has_integrity && same;
      failures += !ok;
      std::printf("%-*s %10ju %9.1f %9.1f %-8s %s\n", name_width, f.name().c_str(),
                  static_cast<uintmax_t>(std::filesystem::file_size(path)), save_ms, load_ms,
                  ok ? "ok" : "FAILED", conv.c_str());
    }
    std::printf("\n%s\n", failures ? "FAILED" : "all formats saved, loaded, converted and verified bit-exact");
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "ckpt_demo: " << e.what() << "\n";
    return 2;
  }
}
