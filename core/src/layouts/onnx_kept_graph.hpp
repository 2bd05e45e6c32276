// A foreign model's graph that model/spec cannot express (a residual block, BatchNormalization,
// Concat, ...), kept in the document as extra/onnx/graph, the onnx plugin's listing of it, so
// that msgpack, json or hdf5 carry it and writing the document to onnx gives the same graph
// back (docs/formats/onnx.md, "Other ONNX models").
#pragma once

#include <ckpt/document.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace ckpt::layouts {

// Where the document keeps it, under extra/onnx; a graph not kept has the reason there instead.
inline constexpr std::string_view kKeptGraph = "graph", kGraphLost = "graph_lost";
// Metadata ckpt.graph of a file written with a kept graph.
inline constexpr std::string_view kKeptNote = "kept: the graph of the ONNX model the document was read from";

// Why the plugin's listing `graph` of a foreign model cannot be kept (it would not write back
// as the same graph, or not over the tensors `state` holds), or empty.
std::string why_not_kept(const Group& graph, const Group* state);

// For a document without model/spec that keeps a graph: the group the onnx writer takes as the
// graph, or why it no longer fits the document's model/state. Nothing for other documents.
std::optional<std::variant<Group, std::string>> kept_graph(const Document& doc);

}  // namespace ckpt::layouts
