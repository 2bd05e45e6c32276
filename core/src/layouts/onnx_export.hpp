// The graph a writer of onnx gets for a document (docs/formats/onnx.md, "The graph"): one node
// per layer of model/spec (Gemm, Conv, MaxPool, Relu, Flatten, Softmax) over the model/state
// initializers, with a dynamic batch dimension; or, when model/spec cannot be expressed, a
// graph of no nodes whose note says why.
#pragma once

#include <ckpt/document.hpp>

namespace ckpt::layouts {

// The onnx.graph group (onnx_graph.hpp) for `doc`, with @note: "built from model/spec" or
// "none: <reason>".
Group onnx_graph_of(const Document& doc);

}  // namespace ckpt::layouts
