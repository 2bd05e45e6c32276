#include "graph_native.hpp"

#include "dtypes.hpp"
#include "text.hpp"

#include <google/protobuf/util/message_differencer.h>

#include <cstring>
#include <iterator>
#include <set>

namespace ckpt_onnx {

using ckpt::sdk::fail;

namespace {

Value float_array(std::vector<double> v) {
  Value o;
  o.type = CKPT_VALUE_FLOAT64_ARRAY;
  o.floats = std::move(v);
  return o;
}

std::string index_name(size_t i) { return std::to_string(i); }
std::string value_key(size_t k) { return "value." + std::to_string(k); }

// onnx.proto's AttributeProto.AttributeType names by value ("" for none), without
// AttributeProto_AttributeType_Name/_Parse, which build protobuf's descriptors of all of
// onnx.proto on first use (milliseconds for every process that reads a model).
constexpr const char* kAttributeTypes[] = {"UNDEFINED", "FLOAT",   "INT",     "STRING",         "TENSOR",
                                           "GRAPH",     "FLOATS",  "INTS",    "STRINGS",        "TENSORS",
                                           "GRAPHS",    "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
static_assert(std::size(kAttributeTypes) == onnx::AttributeProto_AttributeType_AttributeType_ARRAYSIZE);
static_assert(onnx::AttributeProto::SPARSE_TENSOR == 11 && onnx::AttributeProto::TYPE_PROTOS == 14);

std::string attribute_type_name(int type) {
  return type >= 0 && static_cast<size_t>(type) < std::size(kAttributeTypes) ? kAttributeTypes[type] : "";
}

bool attribute_type_of(const std::string& name, onnx::AttributeProto_AttributeType* type) {
  for (size_t i = 0; i < std::size(kAttributeTypes); ++i)
    if (name == kAttributeTypes[i] && onnx::AttributeProto_AttributeType_IsValid(static_cast<int>(i))) {
      *type = static_cast<onnx::AttributeProto_AttributeType>(i);
      return true;
    }
  return false;
}

void list_value(Tree& t, size_t parent, size_t i, const onnx::ValueInfoProto& v) {
  const size_t g = t.add_group(parent, index_name(i));
  if (v.has_name()) t.add_attribute(g, "name", Value::string(v.name()));
  if (!v.type().has_tensor_type()) return;
  const auto& tt = v.type().tensor_type();
  t.add_attribute(g, "elem_type", Value::integer(tt.elem_type()));
  if (!tt.has_shape()) return;
  std::vector<int64_t> dims;
  std::vector<std::string> params;
  for (const auto& d : tt.shape().dim()) {
    dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    params.push_back(d.has_dim_param() ? d.dim_param() : std::string());
  }
  t.add_attribute(g, "dims", Value::int_array(std::move(dims)));
  t.add_attribute(g, "dim_params", Value::string_array(std::move(params)));
}

std::string describe_node(const onnx::NodeProto& n, size_t i) {
  return "node " + std::to_string(i) + " (" + n.op_type() + (n.name().empty() ? "" : " " + quote_text(n.name())) + ")";
}

// Node attribute tensors by {node, attribute}: their index in model.attribute_tensors.
using AttributeTensors = std::map<std::pair<size_t, size_t>, size_t>;

// The listing's members of a TENSOR attribute besides value.<k>: the tensor's name.
std::string tensor_name_key(size_t k) { return "tensor_name." + std::to_string(k); }

// Why attribute `k` of node `i` does not list (empty when it does).
std::string unlisted(const onnx::NodeProto& n, size_t i, size_t k, const GraphExtras& extras, const AttributeTensors& tensors) {
  const onnx::AttributeProto& a = n.attribute(static_cast<int>(k));
  const std::string what = describe_node(n, i) + " attribute " + quote_text(a.name());
  switch (a.type()) {
    case onnx::AttributeProto::INT: case onnx::AttributeProto::FLOAT: case onnx::AttributeProto::STRING:
    case onnx::AttributeProto::INTS: case onnx::AttributeProto::FLOATS: case onnx::AttributeProto::STRINGS:
      return {};
    case onnx::AttributeProto::TENSOR: {
      if (extras.bound) return extras.bound->count({i, k}) ? std::string() : what + " holds a tensor the document does not";
      auto it = tensors.find({i, k});
      if (it == tensors.end()) return what + " is a TENSOR without its tensor";
      const Initializer& t = (*extras.attribute_tensors)[it->second].tensor;
      if (!t.dtype) return what + " is a tensor of " + onnx_type_name(t.onnx_type) + ", a type ckpt has no dtype for";
      return {};
    }
    default: {
      const std::string type = attribute_type_name(a.type());
      return what + " is " + (type.empty() ? "of type " + std::to_string(a.type()) : "a " + type) +
             ", a type the listing does not hold (it holds INT, FLOAT, STRING, their lists and TENSOR)";
    }
  }
}

void list_node(Tree& t, size_t parent, size_t i, const onnx::NodeProto& n, const GraphExtras& extras,
               const AttributeTensors& tensors) {
  const size_t g = t.add_group(parent, index_name(i));
  if (n.has_op_type()) t.add_attribute(g, "op_type", Value::string(n.op_type()));
  if (n.has_domain()) t.add_attribute(g, "domain", Value::string(n.domain()));
  if (n.has_name()) t.add_attribute(g, "name", Value::string(n.name()));
  t.add_attribute(g, "inputs", Value::string_array({n.input().begin(), n.input().end()}));
  t.add_attribute(g, "outputs", Value::string_array({n.output().begin(), n.output().end()}));
  std::vector<std::string> names, types;
  std::vector<std::pair<size_t, Value>> values, names_of_tensors, references;
  std::vector<std::pair<size_t, size_t>> listed;  // attribute, index in model->attribute_tensors
  for (const auto& a : n.attribute()) {
    const size_t k = names.size();
    names.push_back(a.name());
    types.push_back(attribute_type_name(a.type()));
    switch (a.type()) {
      case onnx::AttributeProto::INT: values.emplace_back(k, Value::integer(a.i())); break;
      case onnx::AttributeProto::FLOAT: values.emplace_back(k, Value::floating(a.f())); break;
      case onnx::AttributeProto::STRING: values.emplace_back(k, Value::string(a.s())); break;
      case onnx::AttributeProto::INTS: values.emplace_back(k, Value::int_array({a.ints().begin(), a.ints().end()})); break;
      case onnx::AttributeProto::FLOATS: values.emplace_back(k, float_array({a.floats().begin(), a.floats().end()})); break;
      case onnx::AttributeProto::STRINGS:
        values.emplace_back(k, Value::string_array({a.strings().begin(), a.strings().end()}));
        break;
      case onnx::AttributeProto::TENSOR: {
        // The tensor's data is a tensor of the group (a file ckpt wrote: the document's tensor
        // kept in it, by path), so that its bytes are read, hashed and signed as every tensor's.
        if (extras.bound) {
          auto it = extras.bound->find({i, k});
          if (it == extras.bound->end()) break;
          references.emplace_back(k, Value::string(it->second));
        } else {
          auto it = tensors.find({i, k});
          if (it == tensors.end() || !(*extras.attribute_tensors)[it->second].tensor.dtype) break;
          listed.emplace_back(k, it->second);
        }
        if (a.t().has_name()) names_of_tensors.emplace_back(k, Value::string(a.t().name()));
        break;
      }
      default: break;
    }
  }
  t.add_attribute(g, "attribute_names", Value::string_array(std::move(names)));
  t.add_attribute(g, "attribute_types", Value::string_array(std::move(types)));
  // In this order, which the host's layout keeps (onnx_kept_graph.cpp): values, tensor names,
  // then each tensor (a reference in a file ckpt wrote).
  for (auto& [k, v] : values) t.add_attribute(g, value_key(k), std::move(v));
  for (auto& [k, v] : names_of_tensors) t.add_attribute(g, tensor_name_key(k), std::move(v));
  for (auto& [k, v] : references) t.add_attribute(g, value_key(k), std::move(v));
  for (const auto& [k, index] : listed) {
    const Initializer& init = (*extras.attribute_tensors)[index].tensor;
    Tree::Tensor tensor;
    tensor.name = value_key(k);
    tensor.dtype = init.dtype;
    tensor.shape = init.dims;
    tensor.nbytes = init.nbytes;
    tensor.id = extras.tensor_id_base + index;
    t.add_tensor(g, std::move(tensor));
  }
}

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
  fail(CKPT_ERR_UNSUPPORTED, std::string(kGraphGroup) + "/" + where + ": " + what);
}

const Value* member(const Tree& t, size_t g, const char* name, uint32_t type, const std::string& where) {
  const Value* v = t.find_attribute(g, name);
  if (v && v->type != type) refuse(where, std::string("attribute ") + name + " has the wrong type");
  return v;
}

void value_of(const Tree& t, size_t g, onnx::ValueInfoProto& v, const std::string& where) {
  if (const Value* n = member(t, g, "name", CKPT_VALUE_STRING, where)) v.set_name(n->s);
  const Value* elem = member(t, g, "elem_type", CKPT_VALUE_INT64, where);
  const Value* dims = member(t, g, "dims", CKPT_VALUE_INT64_ARRAY, where);
  const Value* params = member(t, g, "dim_params", CKPT_VALUE_STRING_ARRAY, where);
  if (!elem) {
    if (dims || params) refuse(where, "dims without elem_type");
    return;
  }
  if (elem->i < INT32_MIN || elem->i > INT32_MAX) refuse(where, "elem_type out of range");
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(elem->i));
  if (!dims && !params) return;
  if (!dims || !params || dims->ints.size() != params->strings.size()) refuse(where, "dims and dim_params differ in length");
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < dims->ints.size(); ++i) {
    auto* d = shape->add_dim();
    if (!params->strings[i].empty()) d->set_dim_param(params->strings[i]);
    else if (dims->ints[i] >= 0) d->set_dim_value(dims->ints[i]);
  }
}

void node_of(const Tree& t, size_t g, size_t index, onnx::NodeProto& n, const std::string& where, const TensorOf& tensor_of) {
  if (const Value* v = member(t, g, "op_type", CKPT_VALUE_STRING, where)) n.set_op_type(v->s);
  if (const Value* v = member(t, g, "domain", CKPT_VALUE_STRING, where)) n.set_domain(v->s);
  if (const Value* v = member(t, g, "name", CKPT_VALUE_STRING, where)) n.set_name(v->s);
  if (const Value* v = member(t, g, "inputs", CKPT_VALUE_STRING_ARRAY, where))
    for (const auto& s : v->strings) n.add_input(s);
  if (const Value* v = member(t, g, "outputs", CKPT_VALUE_STRING_ARRAY, where))
    for (const auto& s : v->strings) n.add_output(s);
  const Value* names = member(t, g, "attribute_names", CKPT_VALUE_STRING_ARRAY, where);
  const Value* types = member(t, g, "attribute_types", CKPT_VALUE_STRING_ARRAY, where);
  const size_t count = names ? names->strings.size() : 0;
  if ((types ? types->strings.size() : 0) != count) refuse(where, "attribute_names and attribute_types differ in length");
  for (size_t k = 0; k < count; ++k) {
    onnx::AttributeProto* a = n.add_attribute();
    a->set_name(names->strings[k]);
    onnx::AttributeProto_AttributeType type{};
    if (!attribute_type_of(types->strings[k], &type))
      refuse(where, "attribute " + quote_text(names->strings[k]) + " has unknown type " + quote_text(types->strings[k]));
    a->set_type(type);
    const std::string key = "value." + std::to_string(k);
    auto value = [&](uint32_t want) -> const Value& {
      const Value* v = member(t, g, key.c_str(), want, where);
      if (!v) refuse(where, "attribute " + quote_text(names->strings[k]) + " has no value");
      return *v;
    };
    switch (type) {
      case onnx::AttributeProto::INT: a->set_i(value(CKPT_VALUE_INT64).i); break;
      case onnx::AttributeProto::FLOAT: a->set_f(static_cast<float>(value(CKPT_VALUE_FLOAT64).f)); break;
      case onnx::AttributeProto::STRING: a->set_s(value(CKPT_VALUE_STRING).s); break;
      case onnx::AttributeProto::INTS:
        for (int64_t x : value(CKPT_VALUE_INT64_ARRAY).ints) a->add_ints(x);
        break;
      case onnx::AttributeProto::FLOATS:
        for (double x : value(CKPT_VALUE_FLOAT64_ARRAY).floats) a->add_floats(static_cast<float>(x));
        break;
      case onnx::AttributeProto::STRINGS:
        for (const auto& x : value(CKPT_VALUE_STRING_ARRAY).strings) a->add_strings(x);
        break;
      case onnx::AttributeProto::TENSOR: {
        if (!tensor_of) refuse(where, "attribute " + quote_text(names->strings[k]) + " of type TENSOR cannot be written here");
        const Value* v = t.find_attribute(g, key);
        const Tree::Tensor* tensor = t.find_tensor(g, key);
        if (!v && !tensor) refuse(where, "attribute " + quote_text(names->strings[k]) + " has no value");
        *a->mutable_t() = tensor_of(index, k, v, tensor, where);
        if (const Value* name = member(t, g, tensor_name_key(k).c_str(), CKPT_VALUE_STRING, where)) a->mutable_t()->set_name(name->s);
        break;
      }
      default:
        refuse(where, "attribute " + quote_text(names->strings[k]) + " of type " + types->strings[k] +
                          " cannot be written (the group holds INT, FLOAT, STRING, their lists and TENSOR)");
    }
  }
}

}  // namespace

void strip_tensor_data(onnx::TensorProto& t) {
  t.clear_raw_data();
  t.clear_float_data();
  t.clear_int32_data();
  t.clear_int64_data();
  t.clear_double_data();
  t.clear_uint64_data();
  t.clear_external_data();
  t.clear_data_location();
}

void list_graph(Tree& t, const onnx::GraphProto& graph, const GraphExtras& extras, bool* exact, std::string* why_not) {
  if (t.find_child(0, kGraphGroup))
    fail(CKPT_ERR_FORMAT, "the document has a root member " + quote_text(kGraphGroup) +
                              ", the name under which the graph is listed");
  const size_t g = t.add_group(0, std::string(kGraphGroup));
  if (graph.has_name()) t.add_attribute(g, "name", Value::string(graph.name()));
  if (graph.has_doc_string()) t.add_attribute(g, "doc_string", Value::string(graph.doc_string()));
  if (extras.note) t.add_attribute(g, "note", Value::string(*extras.note));
  if (extras.opset) t.add_attribute(g, "opset", Value::integer(*extras.opset));
  AttributeTensors tensors;
  if (const ScannedModel* m = extras.model) {
    for (const auto& [domain, version] : m->opsets)
      if (domain.empty() || domain == "ai.onnx") {
        t.add_attribute(g, "opset", Value::integer(version));
        break;
      }
    std::vector<std::string> names, types;
    std::vector<int64_t> ranks, dims;
    for (const Initializer& i : m->initializers) {
      names.push_back(i.name);
      types.push_back(onnx_type_name(i.onnx_type));
      ranks.push_back(static_cast<int64_t>(i.dims.size()));
      dims.insert(dims.end(), i.dims.begin(), i.dims.end());
    }
    t.add_attribute(g, "initializers", Value::string_array(std::move(names)));
    t.add_attribute(g, "initializer_types", Value::string_array(std::move(types)));
    t.add_attribute(g, "initializer_ranks", Value::int_array(std::move(ranks)));
    t.add_attribute(g, "initializer_dims", Value::int_array(std::move(dims)));
  }
  if (const auto* a = extras.attribute_tensors)
    for (size_t i = 0; i < a->size(); ++i) tensors.emplace(std::pair((*a)[i].node, (*a)[i].attribute), i);
  const size_t inputs = t.add_group(g, "inputs");
  for (int i = 0; i < graph.input_size(); ++i) list_value(t, inputs, static_cast<size_t>(i), graph.input(i));
  const size_t outputs = t.add_group(g, "outputs");
  for (int i = 0; i < graph.output_size(); ++i) list_value(t, outputs, static_cast<size_t>(i), graph.output(i));
  const size_t nodes = t.add_group(g, "nodes");
  for (int i = 0; i < graph.node_size(); ++i) list_node(t, nodes, static_cast<size_t>(i), graph.node(i), extras, tensors);
  if (!exact) return;
  auto lost = [&](std::string why) {
    *exact = false;
    if (why_not) *why_not = std::move(why);
  };
  // The first attribute the group cannot hold, named.
  for (int i = 0; i < graph.node_size(); ++i)
    for (int k = 0; k < graph.node(i).attribute_size(); ++k)
      if (std::string why = unlisted(graph.node(i), static_cast<size_t>(i), static_cast<size_t>(k), extras, tensors); !why.empty())
        return lost(why);
  // Written again from the group, the graph must come back field for field (attribute tensors
  // but their data, which the group holds as tensors); otherwise the group is not what the file
  // holds.
  onnx::GraphProto expected = graph;
  for (auto& n : *expected.mutable_node())
    for (auto& a : *n.mutable_attribute())
      if (a.type() == onnx::AttributeProto::TENSOR) strip_tensor_data(*a.mutable_t());
  auto header = [&](size_t node, size_t k, const Value*, const Tree::Tensor*, const std::string& where) {
    auto it = tensors.find({node, k});
    if (it == tensors.end()) refuse(where, "attribute " + std::to_string(k) + " holds no tensor");
    const Initializer* init = &(*extras.attribute_tensors)[it->second].tensor;
    onnx::TensorProto out;
    for (int64_t d : init->dims) out.add_dims(d);
    out.set_data_type(init->onnx_type);
    return out;
  };
  onnx::GraphProto back;
  try {
    back = graph_of(t, g, header);
  } catch (const ckpt::sdk::Error& e) {
    return lost(e.what());
  }
  if (google::protobuf::util::MessageDifferencer::Equals(expected, back)) {
    *exact = true;
    return;
  }
  for (int i = 0; i < expected.node_size() && i < back.node_size(); ++i)
    if (!google::protobuf::util::MessageDifferencer::Equals(expected.node(i), back.node(i)))
      return lost(describe_node(graph.node(i), static_cast<size_t>(i)) +
                  " has fields the listing does not hold (a tensor's doc_string or segment, an attribute's "
                  "doc_string, ...)");
  lost("the graph has fields the listing does not hold");
}

onnx::GraphProto graph_of(const Tree& t, size_t g, const TensorOf& tensor_of) {
  onnx::GraphProto graph;
  if (const Value* v = member(t, g, "name", CKPT_VALUE_STRING, "")) graph.set_name(v->s);
  if (const Value* v = member(t, g, "doc_string", CKPT_VALUE_STRING, "")) graph.set_doc_string(v->s);
  auto each = [&](const char* which, auto add) {
    const size_t c = t.find_group(g, which);
    if (c == Tree::npos) return;
    size_t i = 0;
    for (const auto& child : t.groups[c].children) {
      if (child.is_tensor) refuse(which, "holds a tensor");
      add(child.index, i++, std::string(which) + "/" + std::string(t.groups[child.index].name));
    }
  };
  each("inputs", [&](size_t v, size_t, const std::string& where) { value_of(t, v, *graph.add_input(), where); });
  each("outputs", [&](size_t v, size_t, const std::string& where) { value_of(t, v, *graph.add_output(), where); });
  each("nodes", [&](size_t n, size_t i, const std::string& where) { node_of(t, n, i, *graph.add_node(), where, tensor_of); });
  return graph;
}

std::string shadowed_value(const onnx::GraphProto& g, const ScannedModel& model) {
  std::set<std::string> defined;
  for (const auto& i : model.initializers) defined.insert(i.name);
  for (const auto& in : g.input()) defined.insert(in.name());
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& out : g.node(i).output())
      if (!out.empty() && !defined.insert(out).second)
        return "node " + std::to_string(i) + " (" + g.node(i).op_type() +
               (g.node(i).name().empty() ? "" : " " + quote_text(g.node(i).name())) + ") outputs '" + out +
               "', a name an initializer, input or earlier node already gives";
  return {};
}

}  // namespace ckpt_onnx
