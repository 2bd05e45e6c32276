// The graph as the plugin lists and writes it: a root group "onnx.graph" of the document (its
// name, doc_string, inputs, outputs and nodes with their attributes; docs/formats/onnx.md, "The
// graph as listed"). The plugin knows no model semantics: the host's onnx layout adapter
// (core/src/layouts/onnx_sequential.cpp) maps this group onto model/spec and back.
#pragma once

#include "model_scan.hpp"
#include "onnx_document.hpp"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ckpt_onnx {

inline constexpr std::string_view kGraphGroup = "onnx.graph";

// What the group holds beside the graph's own members.
struct GraphExtras {
  std::optional<std::string> note;  // a file ckpt wrote: its metadata ckpt.graph
  // A file ckpt wrote at another version of the default domain than its own (a graph kept from
  // another model): that version.
  std::optional<int64_t> opset;
  const ScannedModel* model = nullptr;  // any other: the default opset and every initializer
  // The node attributes' tensors the scan found. Any other model lists each as a tensor
  // "value.<k>" of its node, whose id is tensor_id_base plus its index here.
  const std::vector<AttributeTensor>* attribute_tensors = nullptr;
  uint64_t tensor_id_base = 0;
  // A file ckpt wrote: {node, attribute} -> the document path of the tensor the document keeps
  // in that attribute, listed as the string "value.<k>".
  const std::map<std::pair<size_t, size_t>, std::string>* bound = nullptr;
};

// Adds the group, last, to the root of `tree`. A graph ckpt reads back exactly (every node
// attribute of a type the group holds, no field the group has no place for) lists as the group
// that writes it again; `exact` says whether `graph` is such a graph, and `why_not` why not
// (naming the node and the attribute where one is the reason).
void list_graph(Tree& tree, const onnx::GraphProto& graph, const GraphExtras& extras, bool* exact = nullptr,
                std::string* why_not = nullptr);

// The TensorProto of TENSOR attribute `k` of node `node`, whose listing is `value` (a string:
// the document path of a tensor) or `tensor` (a tensor of the group); `where` for refusals.
using TensorOf = std::function<onnx::TensorProto(size_t node, size_t k, const Value* value, const Tree::Tensor* tensor,
                                                 const std::string& where)>;

// The graph a group `g` of `tree` describes; a refusal naming the member that is not a graph's
// (unknown attribute types, arrays of different lengths). Without `tensor_of`, a TENSOR
// attribute is refused.
onnx::GraphProto graph_of(const Tree& tree, size_t g, const TensorOf& tensor_of = {});

// The attribute's tensor without its data (raw_data, the typed fields, external data), which
// the group holds apart from the graph: what graph_of gives back for it before data is added.
void strip_tensor_data(onnx::TensorProto& t);

// A node output that redefines an initializer, a graph input or another node's output: ONNX
// Runtime computes with the node's value where ckpt's state dict holds the initializer's, so a
// graph with one has two readings (empty when there is none).
std::string shadowed_value(const onnx::GraphProto& graph, const ScannedModel& model);

}  // namespace ckpt_onnx
