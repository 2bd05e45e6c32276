// The layer types a spec can name, each built from its parsed spec (ckpt/model_spec.hpp, which
// owns the defaults, the shape rules and the messages).
#pragma once

#include <ckpt/model_spec.hpp>
#include <ckpt/train/engine.hpp>
#include <ckpt/train/layer.hpp>

#include <memory>

namespace ckpt::train::detail {

using model_spec::LayerSpec;
using model_spec::Pair;

std::unique_ptr<Layer> make_linear(const LayerSpec& spec, Engine& engine);
std::unique_ptr<Layer> make_conv2d(const LayerSpec& spec, Engine& engine);
std::unique_ptr<Layer> make_maxpool2d(const LayerSpec& spec, Engine& engine);
std::unique_ptr<Layer> make_relu(const LayerSpec& spec, Engine& engine);
std::unique_ptr<Layer> make_flatten(const LayerSpec& spec, Engine& engine);
std::unique_ptr<Layer> make_softmax(const LayerSpec& spec, Engine& engine);

// A layer built from a parsed spec.
std::unique_ptr<Layer> make_layer(const LayerSpec& spec, Engine& engine);

}  // namespace ckpt::train::detail
