// The part of model/spec (docs/schema.md) that maps onto ONNX operators: a sequential model of
// linear, conv2d, maxpool2d, relu, flatten and softmax layers, with the trainer's defaults and
// shape rules. The trainer (train/src/layer_*.cpp) applies the same rules with its own messages
// and types; these reasons are kept in files (extra/onnx/@spec, metadata ckpt.graph, which a
// reader compares), so they stay word for word. Anything else is reported as a reason, never
// guessed at.
#pragma once

#include <ckpt/document.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace ckpt::layouts {

struct Pair {
  int64_t h = 0, w = 0;
  bool operator==(const Pair&) const = default;
};

struct LayerSpec {
  std::string name;
  std::string type;         // linear, conv2d, maxpool2d, relu, flatten, softmax
  int64_t in = 0, out = 0;  // features (linear) or channels (conv2d)
  Pair kernel{}, stride{}, padding{};
  bool bias = true;
  int64_t dim = 1;  // softmax
};

struct SequentialSpec {
  std::vector<int64_t> input_shape;  // one sample, without the batch dimension
  std::vector<LayerSpec> layers;
};

// A spec, or why there is none.
using SpecOrReason = std::variant<SequentialSpec, std::string>;

// Reads the spec group (model/spec).
SpecOrReason read_spec(const Group& spec);
// Writes `spec` as the group `name` of `parent`, as the trainer's describe() would.
void write_spec(Group& parent, const std::string& name, const SequentialSpec& spec);

// Each layer's output shape for a batch of one, after checking that the layers chain; a reason
// when they do not.
std::variant<std::vector<std::vector<int64_t>>, std::string> layer_shapes(const SequentialSpec& spec);

// The parameters a layer has, in PyTorch's names and layouts: {"fc1.weight", [out, in]}, ...
struct ParameterSpec {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<ParameterSpec> layer_parameters(const LayerSpec& layer);

}  // namespace ckpt::layouts
