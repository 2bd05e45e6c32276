// The graph as the plugin lists and writes it: a root group "onnx.graph" of the document (its
// name, doc_string, inputs, outputs and nodes with their attributes; docs/formats/onnx.md, "The
// graph as listed"). The plugin knows no model semantics: the host's onnx layout adapter
// (core/src/layouts/onnx_sequential.cpp) maps this group onto model/spec and back.
#pragma once

#include "model_scan.hpp"
#include "onnx_document.hpp"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt_onnx {

inline constexpr std::string_view kGraphGroup = "onnx.graph";

// What the group holds beside the graph's own members.
struct GraphExtras {
  std::optional<std::string> note;  // a file ckpt wrote: its metadata ckpt.graph
  // A file ckpt wrote at another version of the default domain than its own (a graph kept from
  // another model): that version.
  std::optional<int64_t> opset;
  const ScannedModel* model = nullptr;  // any other: the default opset and every initializer
};

// Adds the group, last, to the root of `tree`. A graph ckpt reads back exactly (every node
// attribute of a type the group holds, no field the group has no place for) lists as the group
// that writes it again; `exact` says whether `graph` is such a graph.
void list_graph(Tree& tree, const onnx::GraphProto& graph, const GraphExtras& extras, bool* exact = nullptr);

// The graph a group `g` of `tree` describes; a refusal naming the member that is not a graph's
// (unknown attribute types, arrays of different lengths).
onnx::GraphProto graph_of(const Tree& tree, size_t g);

// A node output that redefines an initializer, a graph input or another node's output: ONNX
// Runtime computes with the node's value where ckpt's state dict holds the initializer's, so a
// graph with one has two readings (empty when there is none).
std::string shadowed_value(const onnx::GraphProto& graph, const ScannedModel& model);

}  // namespace ckpt_onnx
