// What a file ckpt wrote holds besides its tensors, made from its document alone: the graph
// and the metadata_props. The writer writes exactly these; the reader, which takes a file ckpt
// wrote by its ckpt.document metadata, rebuilds them from that document and refuses the file
// when the graph ONNX Runtime would run, or any metadata other tools show, is not what the
// document says (a node added, an output changed, a producer_name or doc_string edited): a
// file must have one reading.
#pragma once

#include "onnx_document.hpp"

#include <onnx/onnx_pb.h>

#include <string>
#include <utility>
#include <vector>

namespace ckpt_onnx {

struct OwnGraph {
  onnx::GraphProto graph;  // nodes, inputs, outputs, name, doc_string: all but initializers
  std::string note;        // metadata ckpt.graph: "built from model/spec" or "none: <reason>"
};
OwnGraph own_graph(const Document& doc);

// metadata_props in order: meta's attributes (meta/<path>), ckpt.graph, ckpt.external_data
// when `external_note` is not empty, and ckpt.document last.
std::vector<std::pair<std::string, std::string>> own_metadata(const Document& doc, const std::string& graph_note,
                                                              const std::string& external_note);

}  // namespace ckpt_onnx
