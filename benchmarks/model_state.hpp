// The state dicts that benchmarks/compare measures, shared by bench_formats and bench_op (and,
// through `bench_op shapes`, by the Python peers, so that every side writes the same tensors).
//
// - under 8 MiB: the MLP 784-256-128-10 of the trainer (fc1.weight [256, 784], ...), 0.9 MiB;
// - otherwise a GPT-style decoder: token embedding [32000, d], 4 blocks of layer norms,
//   attention qkv [3d, d] and projection [d, d], MLP [4d, d] and [d, 4d] with their biases, and
//   a final layer norm; d (a multiple of 64) is the one that comes nearest the size asked for:
//   d = 896 for 256 MiB (256.6 MiB, largest tensor the 109 MiB embedding), d = 2048 for 1 GiB
//   (1018 MiB, embedding 250 MiB), d = 320 for 64 MiB (57.9 MiB, embedding 39 MiB).
// Tensors are f32 filled with random bits (incompressible, like trained weights).
#pragma once

#include <ckpt/document.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::bench {

using NamedShape = std::pair<std::string, Shape>;

inline std::vector<NamedShape> mlp_shapes() {
  return {{"fc1.weight", {256, 784}}, {"fc1.bias", {256}},  {"fc2.weight", {128, 256}},
          {"fc2.bias", {128}},        {"fc3.weight", {10, 128}}, {"fc3.bias", {10}}};
}

inline std::vector<NamedShape> decoder_shapes(int64_t d, int blocks = 4, int64_t vocab = 32000) {
  std::vector<NamedShape> s{{"embed.weight", {vocab, d}}};
  for (int b = 0; b < blocks; ++b) {
    const std::string p = "blocks." + std::to_string(b) + ".";
    s.push_back({p + "ln1.weight", {d}});
    s.push_back({p + "ln1.bias", {d}});
    s.push_back({p + "attn.qkv.weight", {3 * d, d}});
    s.push_back({p + "attn.qkv.bias", {3 * d}});
    s.push_back({p + "attn.proj.weight", {d, d}});
    s.push_back({p + "attn.proj.bias", {d}});
    s.push_back({p + "ln2.weight", {d}});
    s.push_back({p + "ln2.bias", {d}});
    s.push_back({p + "mlp.fc.weight", {4 * d, d}});
    s.push_back({p + "mlp.fc.bias", {4 * d}});
    s.push_back({p + "mlp.proj.weight", {d, 4 * d}});
    s.push_back({p + "mlp.proj.bias", {d}});
  }
  s.push_back({"ln_f.weight", {d}});
  s.push_back({"ln_f.bias", {d}});
  return s;
}

inline uint64_t shapes_bytes(const std::vector<NamedShape>& shapes) {
  uint64_t n = 0;
  for (const auto& [name, shape] : shapes) n += numel(shape) * 4;
  return n;
}

// The shapes for a state dict of about `bytes`.
inline std::vector<NamedShape> model_shapes(uint64_t bytes) {
  if (bytes < (uint64_t(8) << 20)) return mlp_shapes();
  int64_t best = 64;
  uint64_t best_err = UINT64_MAX;
  for (int64_t d = 64; d <= 8192; d += 64) {
    const uint64_t n = shapes_bytes(decoder_shapes(d));
    const uint64_t err = n > bytes ? n - bytes : bytes - n;
    if (err < best_err) best = d, best_err = err;
  }
  return decoder_shapes(best);
}

// "1M", "256M", "1G", "4096K" or plain bytes.
inline uint64_t parse_size(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  uint64_t mult = 1;
  switch (end && *end ? *end : 'B') {
    case 'k': case 'K': mult = uint64_t(1) << 10; break;
    case 'm': case 'M': mult = uint64_t(1) << 20; break;
    case 'g': case 'G': mult = uint64_t(1) << 30; break;
    default: break;
  }
  return static_cast<uint64_t>(v * static_cast<double>(mult));
}

// The state dict under model/state, as ckpt's checkpoint schema puts it.
inline Document make_model_state(uint64_t bytes) {
  Document doc;
  Group& state = doc.group("model").group("state");
  std::mt19937_64 rng(1);
  for (const auto& [name, shape] : model_shapes(bytes)) {
    Tensor t = Tensor::empty(DType::f32, shape);
    auto b = t.mutable_bytes();
    size_t o = 0;
    for (; o + 8 <= b.size(); o += 8) {
      const uint64_t x = rng();
      std::memcpy(b.data() + o, &x, 8);
    }
    if (o < b.size()) {
      const uint64_t x = rng();
      std::memcpy(b.data() + o, &x, b.size() - o);
    }
    state.add_tensor(name, t);
  }
  return doc;
}

}  // namespace ckpt::bench
