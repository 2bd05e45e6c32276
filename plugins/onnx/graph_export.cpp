#include "graph_export.hpp"

#include "sequential_spec.hpp"
#include "text.hpp"

#include <set>

namespace ckpt_onnx {

namespace {

void set_int(onnx::NodeProto& n, const char* name, int64_t v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void set_ints(onnx::NodeProto& n, const char* name, std::initializer_list<int64_t> v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void value_info(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& sample_shape) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  onnx::TensorShapeProto* s = t->mutable_shape();
  s->add_dim()->set_dim_param("batch");
  for (int64_t d : sample_shape) s->add_dim()->set_dim_value(d);
}

}  // namespace

std::variant<onnx::GraphProto, std::string> build_graph(const Document& doc) {
  const Tree& tree = doc.tree;
  const size_t spec_g = tree.find_path("model/spec");
  if (spec_g == SIZE_MAX) return std::string("the document has no model/spec");
  SpecOrReason read = read_spec(tree, spec_g);
  if (auto* why = std::get_if<std::string>(&read)) return *why;
  const SequentialSpec& spec = std::get<SequentialSpec>(read);
  auto shapes_or = layer_shapes(spec);
  if (auto* why = std::get_if<std::string>(&shapes_or)) return *why;
  const auto& shapes = std::get<0>(shapes_or);

  const size_t state_g = tree.find_path("model/state");
  std::set<std::string> taken;
  for (const std::string& i : doc.initializers) taken.insert(i);
  auto fresh = [&](std::string name) {
    std::string n = name;
    for (int k = 2; taken.count(n); ++k) n = name + "_" + std::to_string(k);
    taken.insert(n);
    return n;
  };
  // The initializer of each parameter, checked against what the layer needs; empty when it
  // does not fit, with the reason in `why`.
  std::string why;
  auto parameter = [&](const ParameterSpec& p) -> std::string {
    const Tree::Tensor* t = state_g == SIZE_MAX ? nullptr : tree.find_tensor(state_g, p.name);
    if (!t) {
      why = "model/state has no " + quote_text(p.name);
      return {};
    }
    if (t->dtype != CKPT_DTYPE_F32 || t->shape != p.shape) {
      why = "model/state/" + p.name + " is " + ckpt::sdk::dtype_name(t->dtype) + " " + shape_text(t->shape) +
            ", the layer needs f32 " + shape_text(p.shape);
      return {};
    }
    return doc.initializer(*t);
  };

  // The names the graph the document came from gave its input and each layer's output
  // (extra/onnx/@value_names), when they still fit: one per layer and the input, distinct, and
  // no initializer's.
  std::vector<std::string> names;
  const size_t onnx_g = tree.find_path("extra/onnx");
  if (const Value* v = onnx_g == SIZE_MAX ? nullptr : tree.find_attribute(onnx_g, "value_names");
      v && v->type == CKPT_VALUE_STRING_ARRAY && v->strings.size() == spec.layers.size() + 1) {
    std::set<std::string> seen;
    bool fits = true;
    for (const std::string& n : v->strings) fits = fits && !n.empty() && !taken.count(n) && seen.insert(n).second;
    if (fits) names = v->strings;
  }
  auto value = [&](size_t i, std::string fallback) { return names.empty() ? fresh(std::move(fallback)) : names[i]; };

  onnx::GraphProto g;
  g.set_name("model");
  g.set_doc_string("Built by ckpt from model/spec; initializers hold model/state under its names.");
  std::string current = value(0, "input");
  value_info(*g.add_input(), current, spec.input_shape);
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& l = spec.layers[i];
    onnx::NodeProto& n = *g.add_node();
    n.set_name(l.name);
    n.add_input(current);
    for (const ParameterSpec& p : layer_parameters(l)) {
      const std::string name = parameter(p);
      if (name.empty()) return why;
      n.add_input(name);
    }
    if (l.type == "linear") {
      n.set_op_type("Gemm");
      set_int(n, "transB", 1);  // weight [out, in], as PyTorch keeps it
    } else if (l.type == "conv2d") {
      n.set_op_type("Conv");
      set_ints(n, "kernel_shape", {l.kernel.h, l.kernel.w});
      set_ints(n, "strides", {l.stride.h, l.stride.w});
      set_ints(n, "pads", {l.padding.h, l.padding.w, l.padding.h, l.padding.w});
      set_ints(n, "dilations", {1, 1});
      set_int(n, "group", 1);
    } else if (l.type == "maxpool2d") {
      n.set_op_type("MaxPool");
      set_ints(n, "kernel_shape", {l.kernel.h, l.kernel.w});
      set_ints(n, "strides", {l.stride.h, l.stride.w});
      set_ints(n, "pads", {l.padding.h, l.padding.w, l.padding.h, l.padding.w});
    } else if (l.type == "relu") {
      n.set_op_type("Relu");
    } else if (l.type == "flatten") {
      n.set_op_type("Flatten");
      set_int(n, "axis", 1);
    } else if (l.type == "softmax") {
      n.set_op_type("Softmax");  // opset 13: along one axis, as PyTorch's Softmax(dim)
      set_int(n, "axis", l.dim);
    }
    current = value(i + 1, i + 1 == spec.layers.size() ? std::string("output") : l.name + "/output");
    n.add_output(current);
  }
  const std::vector<int64_t>& last = shapes.back();
  value_info(*g.add_output(), current, std::vector<int64_t>(last.begin() + 1, last.end()));
  return g;
}

}  // namespace ckpt_onnx
