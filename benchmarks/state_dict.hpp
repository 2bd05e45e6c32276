// State dicts of realistic shapes for the benchmarks: a few large square weights and many
// medium ones, like the linear layers of a transformer block stack.
#pragma once

#include <ckpt/document.hpp>

#include <cstring>
#include <random>

namespace ckpt::bench {

// `mib` of f32 tensors, filled with random bits (incompressible, like trained weights).
inline Document make_state_dict(size_t mib) {
  Document doc;
  Group& state = doc.group("model").group("state");
  std::mt19937_64 rng(1);
  size_t remaining = mib << 20;
  int i = 0;
  auto add = [&](Shape shape) {
    Tensor t = Tensor::empty(DType::f32, shape);
    auto b = t.mutable_bytes();
    for (size_t o = 0; o + 8 <= b.size(); o += 8) {
      uint64_t x = rng();
      std::memcpy(b.data() + o, &x, 8);
    }
    remaining -= t.nbytes();
    state.add_tensor("layers." + std::to_string(i++) + ".weight", t);
  };
  while (remaining >= (size_t(64) << 20) + (size_t(64) << 20)) add({4096, 4096});
  while (remaining >= (size_t(4) << 20)) add({1024, 1024});
  while (remaining >= 4096) add({1024});
  return doc;
}

}  // namespace ckpt::bench
