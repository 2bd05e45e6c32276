// Recognises the graphs model/spec can express: one chain from the graph's single input to its
// single output through Conv, MaxPool, Relu, Flatten (or a Reshape that flattens), Gemm with
// the weight as [out, in], and Softmax, whose parameters are initializers named
// "<layer>.weight" and "<layer>.bias" (what torch.onnx.export writes for nn.Module attributes).
// Anything else gives a reason and no spec; the initializers are still read as a state dict.
#pragma once

#include "model_scan.hpp"
#include "sequential_spec.hpp"

#include <onnx/onnx_pb.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ckpt_onnx {

struct ImportedSpec {
  std::optional<SequentialSpec> spec;
  std::string reason;               // why there is no spec
  std::vector<size_t> parameters;   // initializers used as layer parameters
  std::vector<size_t> constants;    // initializers used as operator inputs (Reshape's shape)
  // The graph's input and each layer's output, as the graph names them (the last is the
  // graph's output): written back, the model takes and gives the values its users name.
  std::vector<std::string> value_names;
};

// A node output that redefines an initializer, a graph input or another node's output: ONNX
// Runtime computes with the node's value where ckpt's state dict holds the initializer's, so a
// graph with one has two readings (empty when there is none).
std::string shadowed_value(const onnx::GraphProto& graph, const ScannedModel& model);

// `int64_values` reads a small INT64 initializer (by index), for Reshape's shape.
ImportedSpec import_spec(const onnx::GraphProto& graph, const ScannedModel& model,
                         const std::function<std::vector<int64_t>(size_t)>& int64_values);

}  // namespace ckpt_onnx
