#include "onnx_export.hpp"

#include "onnx_graph.hpp"
#include "onnx_kept_graph.hpp"
#include "text.hpp"

#include <ckpt/model_spec.hpp>
#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

#include <set>
#include <string_view>
#include <unordered_map>
#include <variant>

namespace ckpt::layouts {

namespace {

// The initializer the onnx plugin names each tensor by (onnx_writer.cpp): model/state and root
// tensors keep their names, everything else the reserved prefix and its path; clashes get #2,
// #3, ... in the order the tensors are written.
struct Initializers {
  std::unordered_map<const Tensor*, std::string> of;
  std::set<std::string> taken;
};

Initializers initializer_names(const Document& doc) {
  constexpr std::string_view kReserved = "ckpt/";
  Initializers out;
  size_t count = 0;
  auto walk = [&](auto& self, const Group& g, const std::string& group_path) -> void {
    for (const auto& c : g.children()) {
      const std::string path = group_path.empty() ? c.name : group_path + "/" + c.name;
      if (c.is_group()) {
        self(self, c.group(), path);
        continue;
      }
      std::string n;
      if ((group_path == "model/state" || group_path.empty()) && sdk::valid_utf8(c.name) && !c.name.starts_with(kReserved))
        n = c.name;
      if (n.empty() || out.taken.count(n)) n = std::string(kReserved) + path;
      if (!sdk::valid_utf8(n)) n = std::string(kReserved) + "tensor-" + std::to_string(count);
      const std::string base = n;
      for (int k = 2; out.taken.count(n); ++k) n = base + "#" + std::to_string(k);
      out.taken.insert(n);
      out.of.emplace(&c.tensor(), n);
      ++count;
    }
  };
  walk(walk, doc, "");
  return out;
}

struct NodeBuilder {
  Group& g;
  std::vector<std::string> names, types;
  void attribute(const char* name, const char* type, Value v) {
    g.set(onnx_graph::value_key(names.size()), std::move(v));
    names.emplace_back(name);
    types.emplace_back(type);
  }
  void integer(const char* name, int64_t v) { attribute(name, "INT", v); }
  void ints(const char* name, std::vector<int64_t> v) { attribute(name, "INTS", std::move(v)); }
};

void value_info(Group& values, const std::string& name, const std::vector<int64_t>& sample_shape) {
  Group& v = values.add_group(std::to_string(values.children().size()));
  v.set("name", name);
  v.set("elem_type", int64_t{1});  // FLOAT
  std::vector<int64_t> dims{-1};
  std::vector<std::string> params{"batch"};
  for (int64_t d : sample_shape) {
    dims.push_back(d);
    params.emplace_back();
  }
  v.set("dims", std::move(dims));
  v.set("dim_params", std::move(params));
}

// The graph's members, or the reason the document has no graph.
std::variant<Group, std::string> build_graph(const Document& doc) {
  const Group* spec_g = doc.find_group_path("model/spec");
  if (!spec_g) return std::string("the document has no model/spec");
  model_spec::SequentialSpec spec;
  std::vector<Shape> shapes;
  try {
    spec = model_spec::parse(*spec_g);
    shapes = model_spec::layer_shapes(spec);
  } catch (const model_spec::SpecError& e) {
    return e.reason();  // the short wording: files keep it (metadata ckpt.graph)
  }

  const Group* state_g = doc.find_group_path("model/state");
  Initializers inits = initializer_names(doc);
  std::set<std::string>& taken = inits.taken;
  auto fresh = [&](std::string name) {
    std::string n = name;
    for (int k = 2; taken.count(n); ++k) n = name + "_" + std::to_string(k);
    taken.insert(n);
    return n;
  };
  // The initializer of each parameter, checked against what the layer needs; empty when it
  // does not fit, with the reason in `why`.
  std::string why;
  auto parameter = [&](const model_spec::ParameterSpec& p) -> std::string {
    const Tensor* t = state_g ? state_g->find_tensor(p.name) : nullptr;
    if (!t) {
      why = "model/state has no " + quote_text(p.name);
      return {};
    }
    if (t->dtype() != DType::f32 || t->shape() != p.shape) {
      why = "model/state/" + p.name + " is " + sdk::dtype_name(static_cast<uint32_t>(t->dtype())) + " " + shape_text(t->shape()) +
            ", the layer needs f32 " + shape_text(p.shape);
      return {};
    }
    return inits.of.at(t);
  };

  // The names the graph the document came from gave its input and each layer's output
  // (extra/onnx/@value_names), when they still fit: one per layer and the input, distinct, and
  // no initializer's.
  std::vector<std::string> names;
  const Group* onnx_g = doc.find_group_path("extra/onnx");
  const Value* v = onnx_g ? onnx_g->attribute("value_names") : nullptr;
  if (const auto* given = v ? std::get_if<std::vector<std::string>>(v) : nullptr; given && given->size() == spec.layers.size() + 1) {
    std::set<std::string> seen;
    bool fits = true;
    for (const std::string& n : *given) fits = fits && !n.empty() && !taken.count(n) && seen.insert(n).second;
    if (fits) names = *given;
  }
  auto value = [&](size_t i, std::string fallback) { return names.empty() ? fresh(std::move(fallback)) : names[i]; };

  Group g;
  g.set("name", "model");
  g.set("doc_string", "Built by ckpt from model/spec; initializers hold model/state under its names.");
  g.set("note", "built from model/spec");
  Group& inputs = g.add_group(onnx_graph::kInputs);
  Group& outputs = g.add_group(onnx_graph::kOutputs);
  Group& nodes = g.add_group(onnx_graph::kNodes);
  std::string current = value(0, "input");
  value_info(inputs, current, spec.input_shape);
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const model_spec::LayerSpec& l = spec.layers[i];
    Group& n = nodes.add_group(std::to_string(i));
    std::vector<std::string> node_inputs{current};
    for (const model_spec::ParameterSpec& local : model_spec::parameters(l)) {
      const std::string name = parameter({l.name + "." + local.name, local.shape});
      if (name.empty()) return why;
      node_inputs.push_back(name);
    }
    Group values;  // value.<k> of each attribute, after the node's other members
    NodeBuilder b{values, {}, {}};
    std::string op;
    if (l.type == model_spec::LayerType::linear) {
      op = "Gemm";
      b.integer("transB", 1);  // weight [out, in], as PyTorch keeps it
    } else if (l.type == model_spec::LayerType::conv2d) {
      op = "Conv";
      b.ints("kernel_shape", {l.kernel.h, l.kernel.w});
      b.ints("strides", {l.stride.h, l.stride.w});
      b.ints("pads", {l.padding.h, l.padding.w, l.padding.h, l.padding.w});
      b.ints("dilations", {1, 1});
      b.integer("group", 1);
    } else if (l.type == model_spec::LayerType::maxpool2d) {
      op = "MaxPool";
      b.ints("kernel_shape", {l.kernel.h, l.kernel.w});
      b.ints("strides", {l.stride.h, l.stride.w});
      b.ints("pads", {l.padding.h, l.padding.w, l.padding.h, l.padding.w});
    } else if (l.type == model_spec::LayerType::relu) {
      op = "Relu";
    } else if (l.type == model_spec::LayerType::flatten) {
      op = "Flatten";
      b.integer("axis", 1);
    } else if (l.type == model_spec::LayerType::softmax) {
      op = "Softmax";  // opset 13: along one axis, as PyTorch's Softmax(dim)
      b.integer("axis", l.dim);
    }
    current = value(i + 1, i + 1 == spec.layers.size() ? std::string("output") : l.name + "/output");
    // The node's members in the order the plugin lists them (graph_native.cpp).
    n.set("op_type", op);
    n.set("name", l.name);
    n.set("inputs", std::move(node_inputs));
    n.set("outputs", std::vector<std::string>{current});
    n.set("attribute_names", std::move(b.names));
    n.set("attribute_types", std::move(b.types));
    for (const auto& a : values.attributes()) n.set(a.name, a.value);
  }
  const std::vector<int64_t>& last = shapes.back();
  value_info(outputs, current, std::vector<int64_t>(last.begin() + 1, last.end()));
  return g;
}

}  // namespace

Group onnx_graph_of(const Document& doc) {
  std::variant<Group, std::string> built;
  if (auto kept = kept_graph(doc)) built = std::move(*kept);
  else built = build_graph(doc);
  if (auto* g = std::get_if<Group>(&built)) return std::move(*g);
  const std::string& why = std::get<std::string>(built);
  Group g;
  g.set("name", "state");
  g.set("doc_string", "No model graph (" + why + "); the initializers hold the document's tensors.");
  g.set("note", "none: " + why);
  g.add_group(onnx_graph::kInputs);
  g.add_group(onnx_graph::kOutputs);
  g.add_group(onnx_graph::kNodes);
  return g;
}

}  // namespace ckpt::layouts
