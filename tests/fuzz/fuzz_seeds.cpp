// ckpt_fuzz_seeds TARGET OUTDIR: writes seed files for a fuzz target. For "sharded", the index
// of the fixed two-shard folder fuzz_sharded fuzzes (fuzz_sharded_fixture.hpp); for "manifest", the
// manifests of the plugins found; for "keyfile", the fixed fuzzing key pair; for a plugin's
// name, files written through the plugin's own writers: small documents with every dtype, shape
// kind, attribute type and nesting, and a checkpoint with meta/integrity, so the fuzzer starts
// from files that reach every branch of the reader and of the integrity checks. Documents a
// format cannot hold are left out. (scripts/fuzz.sh adds the attacks of tests/security.)
#include "fuzz_key.hpp"
#include "fuzz_sharded_fixture.hpp"

#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/signature.hpp>

#include <cstdio>

using namespace ckpt;

namespace {

std::vector<std::pair<std::string, Document>> documents() {
  std::vector<std::pair<std::string, Document>> out;
  out.emplace_back("empty", Document());

  Document dtypes;
  for (unsigned d = 1; d <= static_cast<unsigned>(kLastElementDType); ++d) {
    DType dt = static_cast<DType>(d);
    Tensor t = Tensor::zeros(dt, {2, 3});
    auto b = t.mutable_bytes();
    for (size_t i = 0; i < b.size(); ++i) b[i] = std::byte(dt == DType::boolean ? i & 1 : (i * 37 + d) & 0x3f);
    dtypes.add_tensor(std::string(name(dt)), t);
  }
  dtypes.add_tensor("scalar", Tensor::from<double>(DType::f64, {}, {3.5}));
  dtypes.add_tensor("empty", Tensor::zeros(DType::f32, {0, 4}));
  out.emplace_back("dtypes", std::move(dtypes));

  Document attrs;
  attrs.set("b", true).set("i", int64_t{-7}).set("f", 0.25).set("s", "text");
  attrs.set("ba", std::vector<bool>{true, false}).set("ia", std::vector<int64_t>{1, -2, 3});
  attrs.set("fa", std::vector<double>{0.5, -1e300}).set("sa", std::vector<std::string>{"a", "", "c"});
  attrs.set("ia0", std::vector<int64_t>{});
  Group& inner = attrs.group("outer").group("inner");
  inner.set("depth", 2);
  inner.add_tensor("w", Tensor::from<float>(DType::f32, {2, 2}, {1, 2, 3, 4}));
  attrs.group("outer").group("empty");
  out.emplace_back("attributes", std::move(attrs));

  Checkpoint c;
  c.producer = "ckpt_fuzz_seeds";
  c.created = "2026-01-01T00:00:00Z";
  c.model_spec.set("type", "mlp");
  c.model_state.add_tensor("fc1.weight", Tensor::from<float>(DType::f32, {3, 2}, {1, 2, 3, 4, 5, 6}));
  c.model_state.add_tensor("fc1.bias", Tensor::from<float>(DType::f32, {3}, {0, 1, 0}));
  c.optimizer.set("type", "sgd").set("step", 3);
  c.optimizer.group("state").group("fc1.weight").add_tensor(
      "momentum_buffer", Tensor::from<float>(DType::f32, {3, 2}, {0, 0, 1, 1, 0, 0}));
  c.trainer.set("epoch", 1).group("metrics").set("test_accuracy", 0.5);
  Document ckpt_doc = c.to_document();
  add_integrity(ckpt_doc);
  out.emplace_back("checkpoint", std::move(ckpt_doc));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PLUGIN OUTDIR\n", argv[0]);
    return 2;
  }
  const std::string plugin = argv[1];
  const fs::path dir = argv[2];
  fs::create_directories(dir);
  int written = 0;
  if (plugin == "manifest") {
    for (const auto& p : Registry::global().plugins())
      if (!p->manifest.empty()) {
        fs::copy_file(p->manifest, dir / p->manifest.filename(), fs::copy_options::overwrite_existing);
        ++written;
      }
    std::printf("manifest: %d seed files in %s\n", written, dir.c_str());
    return 0;
  }
  if (plugin == "sharded") {
    const fs::path fixture = dir / "fixture";
    ckpt::fuzz::make_sharded_fixture(fixture);
    fs::copy_file(fixture / sharded::kIndexName, dir / "index.json", fs::copy_options::overwrite_existing);
    fs::remove_all(fixture);
    std::printf("sharded: 1 seed file in %s\n", dir.c_str());
    return 0;
  }
  if (plugin == "keyfile") {
    std::FILE* f = std::fopen((dir / "fuzz").c_str(), "w");
    std::FILE* g = std::fopen((dir / "fuzz.pub").c_str(), "w");
    if (!f || !g) return 1;
    std::fputs(ckpt::fuzz::kSecretKey, f);
    std::fputs(ckpt::fuzz::kPublicKey, g);
    std::fclose(f);
    std::fclose(g);
    std::printf("keyfile: 2 seed files in %s\n", dir.c_str());
    return 0;
  }
  for (const auto& f : Registry::global().formats()) {
    if (f.plugin().name != plugin || !f.info().can(CKPT_CAP_WRITE)) continue;
    const std::string ext = f.info().extensions.empty() ? ".bin" : f.info().extensions.front();
    auto docs = documents();
    // Every dtype the format holds, block dtypes included (rows of two whole blocks).
    Document held;
    for (unsigned d = 1; d <= static_cast<unsigned>(kLastDType); ++d) {
      const DType dt = static_cast<DType>(d);
      if (!f.info().holds(dt)) continue;
      Tensor t = Tensor::zeros(dt, {2, 2 * static_cast<int64_t>(block_elements(dt))});
      auto b = t.mutable_bytes();
      for (size_t i = 0; i < b.size(); ++i) b[i] = std::byte(dt == DType::boolean ? i & 1 : (i * 37 + d) & 0x3f);
      held.add_tensor(std::string(name(dt)), t);
    }
    docs.emplace_back("held_dtypes", std::move(held));
    for (const auto& [label, doc] : docs) {
      try {
        if (!plan_losses(doc, f.info()).empty()) continue;
      } catch (const UnsupportedError&) {
        continue;  // a dtype the format cannot hold even by a cast (complex into GGUF)
      }
      const fs::path p = dir / (f.name() + "-" + label + ext);
      try {
        write_document(doc, p, f);
        ++written;
      } catch (const Error& e) {
        std::fprintf(stderr, "%s: %s left out: %s\n", f.name().c_str(), label.c_str(), e.what());
      }
    }
  }
  std::printf("%s: %d seed files in %s\n", plugin.c_str(), written, dir.c_str());
  return 0;
}
