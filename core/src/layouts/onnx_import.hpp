// Recognises the graphs model/spec can express: one chain from the graph's single input to its
// single output through Conv, MaxPool, Relu, Flatten (or a Reshape that flattens), Gemm with
// the weight as [out, in], and Softmax, whose parameters are initializers named
// "<layer>.weight" and "<layer>.bias" (what torch.onnx.export writes for nn.Module attributes).
// Anything else gives a reason and no spec; the initializers are still read as a state dict.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/model_spec.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::layouts {

using model_spec::LayerSpec;
using model_spec::LayerType;
using model_spec::Pair;
using model_spec::SequentialSpec;

struct OnnxInitializer {
  std::string name;
  std::string type;  // ONNX's name of its data type: FLOAT, INT64, ...
  std::vector<int64_t> dims;
};

struct ImportedSpec {
  std::optional<SequentialSpec> spec;
  std::string reason;               // why there is no spec
  std::vector<size_t> parameters;   // initializers used as layer parameters
  std::vector<size_t> constants;    // initializers used as operator inputs (Reshape's shape)
  // The graph's input and each layer's output, as the graph names them (the last is the
  // graph's output): written back, the model takes and gives the values its users name.
  std::vector<std::string> value_names;
};

// `graph` is the plugin's onnx.graph group, `opset` the default domain's version if the model
// imports it; `int64_values` reads a small INT64 initializer (by index), for Reshape's shape,
// and `tensor_values` a small INT64 tensor of the group (a Constant's value, by its path in the
// group, "nodes/<i>/value.<k>").
ImportedSpec import_spec(const Group& graph, const std::vector<OnnxInitializer>& initializers, std::optional<int64_t> opset,
                         const std::function<std::vector<int64_t>(size_t)>& int64_values,
                         const std::function<std::vector<int64_t>(const std::string&, size_t)>& tensor_values,
                         const std::string& file);

}  // namespace ckpt::layouts
