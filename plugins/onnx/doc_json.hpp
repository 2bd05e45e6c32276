// The document (without tensor bytes) as JSON, stored in the model's metadata_props under
// "ckpt.document". Exact for every attribute: int64 as JSON integers, float64 as numbers when
// finite and not -0.0 (nlohmann/json prints the shortest text that reads back to the same
// double) and otherwise as {"bits": "<16 hex digits>"}, strings as JSON strings when valid
// UTF-8 and otherwise as {"hex": "..."}. Tensors name the initializer that holds their bytes.
//
//   {"format": "ckpt-onnx-document", "version": 1,
//    "root": {"attributes": [[name, type, value], ...],
//             "children": [{"group": name, "attributes": ..., "children": ...},
//                          {"tensor": name, "dtype": "f32", "shape": [2, 3],
//                           "initializer": "fc1.weight"}, ...]}}
#pragma once

#include "doc_tree.hpp"

#include <string>
#include <string_view>

namespace ckpt_onnx {

std::string tree_to_json(const Tree& tree);
// Throws a format error naming `source` and the place in the document that is wrong.
Tree tree_from_json(std::string_view json, const std::string& source);

// An attribute value as text for a metadata_props entry: strings as they are (when valid
// UTF-8), everything else as JSON.
std::string value_as_text(const Value& v);

}  // namespace ckpt_onnx
