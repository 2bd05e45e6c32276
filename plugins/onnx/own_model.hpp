// What a file ckpt wrote holds in metadata_props, made from its document and its graph's note.
// The writer writes exactly these; the reader, which takes a file ckpt wrote by its
// ckpt.document metadata, rebuilds them from that document and refuses the file when any
// metadata other tools show is not what the document says: a file must have one reading. (That
// the graph is the one model/spec makes is the host's onnx layout's check.)
#pragma once

#include "onnx_document.hpp"

#include <string>
#include <utility>
#include <vector>

namespace ckpt_onnx {

// metadata_props in order: meta's attributes (meta/<path>), ckpt.graph, ckpt.external_data
// when `external_note` is not empty, and ckpt.document last.
std::vector<std::pair<std::string, std::string>> own_metadata(const Document& doc, const std::string& graph_note,
                                                              const std::string& external_note);

}  // namespace ckpt_onnx
