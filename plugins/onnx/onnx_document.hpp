// The document without tensor bytes (ckpt::sdk::Tree) and, per tensor, the ONNX initializer
// holding its bytes. The writer records one as the host streams a document and stores it as
// JSON in the model's metadata under "ckpt.document"; the reader rebuilds one from that JSON,
// or from a foreign model's graph, and lists it. The JSON is the SDK's skeleton codec's
// (ckpt/sdk_skeleton.hpp):
//
//   {"format": "ckpt-onnx-document", "version": 1,
//    "root": {"attributes": [[name, type, value], ...],
//             "children": [{"group": name, "attributes": ..., "children": ...},
//                          {"tensor": name, "dtype": "f32", "shape": [2, 3],
//                           "initializer": "fc1.weight"}, ...]}}
#pragma once

#include <ckpt/sdk_tree.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_onnx {

using ckpt::sdk::Tree;
using ckpt::sdk::Value;

struct Document {
  Tree tree;
  std::vector<std::string> initializers;  // by index in tree.tensors

  size_t add_tensor(size_t group, Tree::Tensor t, std::string initializer) {
    initializers.push_back(std::move(initializer));
    return tree.add_tensor(group, std::move(t));
  }
  const std::string& initializer(const Tree::Tensor& t) const {
    return initializers[static_cast<size_t>(&t - tree.tensors.data())];
  }
};

std::string document_to_json(const Document& doc);
// Throws a format error naming `source` and the place in the document that is wrong.
Document document_from_json(std::string_view json, const std::string& source);

// An attribute value as text for a metadata_props entry: strings as they are (when valid
// UTF-8), everything else as the document's JSON.
std::string value_as_text(const Value& v);

}  // namespace ckpt_onnx
