#include "init.hpp"

namespace ckpt::train::detail {

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t layer_seed(uint64_t model_seed, std::string_view layer_name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a: stable across compilers, unlike std::hash
  for (unsigned char c : layer_name) h = (h ^ c) * 0x100000001b3ULL;
  return splitmix64(splitmix64(model_seed) ^ h);
}

void uniform_fill(std::span<float> values, float bound, std::mt19937_64& rng) {
  for (float& v : values) {
    // 24 random bits give every float in [0, 1) with 2^-24 spacing, exactly.
    float u = static_cast<float>(rng() >> 40) * 0x1p-24f;
    v = (2.0f * u - 1.0f) * bound;
  }
}

}  // namespace ckpt::train::detail
