// The model spec of a state dict that came without one (a PyTorch state dict, say), inferred
// from its parameter names and shapes when they are those of a ready-made model.
#pragma once

#include <ckpt/document.hpp>

#include <optional>

namespace ckpt::train {

// Model::mlp_spec for fc1..fcN Linear layers chained in, h1, ..., classes (the layers of
// PyTorch's nn.Linear chain with ReLUs between), Model::convnet_spec for the LeNet-style
// ConvNet's conv1, conv2, fc1, fc2; nullopt for anything else.
std::optional<Group> infer_spec(const Group& state);

}  // namespace ckpt::train
