#include "onnx_graph.hpp"

#include <ckpt/errors.hpp>

namespace ckpt::layouts::onnx_graph {

namespace {

[[noreturn]] void malformed(const std::string& file, const std::string& where, const std::string& what) {
  throw FormatError("'" + file + "' at " + std::string(kGroup) + "/" + where + ": " + what);
}

template <class T>
const T* get(const Group& g, std::string_view name, const std::string& file, const std::string& where) {
  const Value* v = g.attribute(name);
  if (!v) return nullptr;
  const T* t = std::get_if<T>(v);
  if (!t) malformed(file, where, "attribute " + std::string(name) + " has the wrong type");
  return t;
}

}  // namespace

std::vector<Node> nodes_of(const Group& graph, const std::string& file) {
  std::vector<Node> out;
  const Group* nodes = graph.find_group(kNodes);
  if (!nodes) return out;
  out.reserve(nodes->children().size());
  for (const auto& c : nodes->children()) {
    const std::string where = std::string(kNodes) + "/" + c.name;
    if (!c.is_group()) malformed(file, where, "a node is a group");
    const Group& g = c.group();
    Node n;
    if (const auto* s = get<std::string>(g, "op_type", file, where)) n.op_type = *s;
    if (const auto* s = get<std::string>(g, "domain", file, where)) n.domain = *s;
    if (const auto* s = get<std::string>(g, "name", file, where)) n.name = *s;
    if (const auto* s = get<std::vector<std::string>>(g, "inputs", file, where)) n.inputs = *s;
    if (const auto* s = get<std::vector<std::string>>(g, "outputs", file, where)) n.outputs = *s;
    const auto* names = get<std::vector<std::string>>(g, "attribute_names", file, where);
    const auto* types = get<std::vector<std::string>>(g, "attribute_types", file, where);
    const size_t count = names ? names->size() : 0;
    if ((types ? types->size() : 0) != count) malformed(file, where, "attribute_names and attribute_types differ in length");
    for (size_t k = 0; k < count; ++k) {
      const Tensor* t = g.find_tensor(value_key(k));
      n.attributes.push_back({(*names)[k], (*types)[k], g.attribute(value_key(k)), t, t ? where + "/" + value_key(k) : std::string()});
    }
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<ValueInfo> values_of(const Group& graph, std::string_view which, const std::string& file) {
  std::vector<ValueInfo> out;
  const Group* values = graph.find_group(which);
  if (!values) return out;
  for (const auto& c : values->children()) {
    const std::string where = std::string(which) + "/" + c.name;
    if (!c.is_group()) malformed(file, where, "a value is a group");
    const Group& g = c.group();
    ValueInfo v;
    if (const auto* s = get<std::string>(g, "name", file, where)) v.name = *s;
    if (const auto* t = get<int64_t>(g, "elem_type", file, where)) v.elem_type = *t;
    const auto* dims = get<std::vector<int64_t>>(g, "dims", file, where);
    const auto* params = get<std::vector<std::string>>(g, "dim_params", file, where);
    if (dims) {
      if (!params || params->size() != dims->size()) malformed(file, where, "dims and dim_params differ in length");
      v.has_shape = true;
      v.dims = *dims;
      v.dim_params = *params;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace ckpt::layouts::onnx_graph
