// Builds the ONNX graph of a document's model/spec: one node per layer (Gemm, Conv, MaxPool,
// Relu, Flatten, Softmax) over the model/state initializers, with a dynamic batch dimension.
#pragma once

#include "onnx_document.hpp"

#include <onnx/onnx_pb.h>

#include <string>
#include <variant>

namespace ckpt_onnx {

// The graph's nodes, input and output (its initializers are streamed separately), or the
// reason the document has no graph (no spec, a layer ONNX cannot express here, a parameter
// missing from model/state or of another dtype or shape).
std::variant<onnx::GraphProto, std::string> build_graph(const Document& doc);

}  // namespace ckpt_onnx
