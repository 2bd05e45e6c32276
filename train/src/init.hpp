// PyTorch's default initialisation, reproducible everywhere: the uniform draws come straight
// from std::mt19937_64's bits (std::uniform_real_distribution differs between libraries).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string_view>

namespace ckpt::train::detail {

// A seed for one layer, from the model's seed and the layer's name, so that inserting a layer
// leaves the others' initial values unchanged.
uint64_t layer_seed(uint64_t model_seed, std::string_view layer_name);

// U(-bound, bound): kaiming_uniform(a=sqrt(5)) and PyTorch's bias init both reduce to
// bound = 1/sqrt(fan_in).
void uniform_fill(std::span<float> values, float bound, std::mt19937_64& rng);

}  // namespace ckpt::train::detail
