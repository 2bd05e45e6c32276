// The ONNX plugin's native reading of a graph (docs/formats/onnx.md, "The graph as listed"):
// a root group "onnx.graph" that the plugin lists last and that a writer of onnx takes as the
// graph to write. Its members' names, and a view of its nodes for the layout's importer.
#pragma once

#include <ckpt/document.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::layouts::onnx_graph {

inline constexpr std::string_view kGroup = "onnx.graph";
inline constexpr std::string_view kFormat = "onnx";
// Attributes of the group; inputs, outputs and nodes are its child groups "0", "1", ...
inline constexpr std::string_view kName = "name", kDocString = "doc_string",
                                  kNote = "note",  // a file ckpt wrote: its metadata ckpt.graph
                                  kOpset = "opset",  // other files: the default domain's version
                                  kInitializers = "initializers", kInitializerTypes = "initializer_types",
                                  kInitializerRanks = "initializer_ranks", kInitializerDims = "initializer_dims";
inline constexpr std::string_view kInputs = "inputs", kOutputs = "outputs", kNodes = "nodes";
// A value (input, output): @name, @elem_type (present with a tensor type), @dims and
// @dim_params (present with a shape; a dim of neither is -1 and "").
// A node: @op_type, @domain, @name (each present when the file sets it), @inputs, @outputs,
// @attribute_names, @attribute_types (ONNX's names: INT, FLOATS, ...), and per attribute k a
// value "value.<k>": INT int64, FLOAT float64, STRING string, INTS int64[], FLOATS float64[],
// STRINGS string[]; a TENSOR a tensor "value.<k>" of the node's group (its data; "tensor_name.<k>"
// the TensorProto's name when it has one), or, in the group a writer gets and in the listing of
// a file ckpt wrote, the document path of that tensor as a string; other types none.
inline std::string value_key(size_t k) { return "value." + std::to_string(k); }
inline std::string tensor_name_key(size_t k) { return "tensor_name." + std::to_string(k); }

struct NodeAttribute {
  std::string name, type;
  const Value* value = nullptr;
  const Tensor* tensor = nullptr;  // a TENSOR's data
  std::string tensor_path;         // its path in the group: "nodes/<i>/value.<k>"
};

struct Node {
  std::string op_type, domain, name;
  std::vector<std::string> inputs, outputs;
  std::vector<NodeAttribute> attributes;
  // The first attribute of that name, as protobuf's readers of a node find it.
  const NodeAttribute* find(std::string_view attribute) const {
    for (const auto& a : attributes)
      if (a.name == attribute) return &a;
    return nullptr;
  }
};

struct ValueInfo {
  std::string name;
  std::optional<int64_t> elem_type;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;
};

// Views of the group's members; a FormatError naming `file` where the group is malformed.
std::vector<Node> nodes_of(const Group& graph, const std::string& file);
std::vector<ValueInfo> values_of(const Group& graph, std::string_view which, const std::string& file);

}  // namespace ckpt::layouts::onnx_graph
