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
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// The location of a tensor kept in a node attribute's TensorProto (the value of a Constant of a
// graph kept from another model) instead of an initializer: "ckpt//node/<node>/attribute/<k>".
// No initializer the writer names has this form: its own names after "ckpt/" start with a
// document path, which never starts with '/'.
std::string attribute_location(size_t node, size_t attribute);
// {node, attribute} of such a location; nothing for an initializer's name.
std::optional<std::pair<size_t, size_t>> attribute_location(std::string_view location);

std::string document_to_json(const Document& doc);
// Throws a format error naming `source` and the place in the document that is wrong.
Document document_from_json(std::string_view json, const std::string& source);

// An attribute value as text for a metadata_props entry: strings as they are (when valid
// UTF-8), everything else as the document's JSON.
std::string value_as_text(const Value& v);

}  // namespace ckpt_onnx
