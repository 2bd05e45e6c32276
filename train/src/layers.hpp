// The layer types a spec can name, each built from its spec group.
#pragma once

#include "layer_attrs.hpp"

#include <ckpt/train/engine.hpp>
#include <ckpt/train/layer.hpp>

#include <memory>

namespace ckpt::train::detail {

std::unique_ptr<Layer> make_linear(const LayerAttrs& spec, Engine& engine);
std::unique_ptr<Layer> make_conv2d(const LayerAttrs& spec, Engine& engine);
std::unique_ptr<Layer> make_maxpool2d(const LayerAttrs& spec, Engine& engine);
std::unique_ptr<Layer> make_relu(const LayerAttrs& spec, Engine& engine);
std::unique_ptr<Layer> make_flatten(const LayerAttrs& spec, Engine& engine);
std::unique_ptr<Layer> make_softmax(const LayerAttrs& spec, Engine& engine);

}  // namespace ckpt::train::detail
