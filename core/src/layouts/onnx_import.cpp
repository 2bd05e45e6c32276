#include "onnx_import.hpp"

#include "onnx_graph.hpp"
#include "text.hpp"

#include <map>
#include <set>

namespace ckpt::layouts {

using onnx_graph::Node;
using onnx_graph::NodeAttribute;

namespace {

struct NoSpec {
  std::string why;
};
[[noreturn]] void no(const std::string& why) { throw NoSpec{why}; }

std::string describe(const Node& n, int index) {
  return "node " + std::to_string(index) + " (" + n.op_type + (n.name.empty() ? "" : " " + quote_text(n.name)) + ")";
}

int64_t attr_int(const Node& n, const std::string& what, const char* name, int64_t fallback) {
  const NodeAttribute* a = n.find(name);
  if (!a) return fallback;
  const int64_t* v = a->value ? std::get_if<int64_t>(a->value) : nullptr;
  if (a->type != "INT" || !v) no(what + ": attribute " + name + " is not an int");
  return *v;
}

float attr_float(const Node& n, const std::string& what, const char* name, float fallback) {
  const NodeAttribute* a = n.find(name);
  if (!a) return fallback;
  const double* v = a->value ? std::get_if<double>(a->value) : nullptr;
  if (a->type != "FLOAT" || !v) no(what + ": attribute " + name + " is not a float");
  return static_cast<float>(*v);
}

std::vector<int64_t> attr_ints(const Node& n, const std::string& what, const char* name, std::vector<int64_t> fallback) {
  const NodeAttribute* a = n.find(name);
  if (!a) return fallback;
  const auto* v = a->value ? std::get_if<std::vector<int64_t>>(a->value) : nullptr;
  if (a->type != "INTS" || !v) no(what + ": attribute " + name + " is not a list of ints");
  return *v;
}

std::string attr_string(const Node& n, const std::string& what, const char* name, std::string fallback) {
  const NodeAttribute* a = n.find(name);
  if (!a) return fallback;
  const auto* v = a->value ? std::get_if<std::string>(a->value) : nullptr;
  if (a->type != "STRING" || !v) no(what + ": attribute " + name + " is not a string");
  return *v;
}

using TensorValues = std::function<std::vector<int64_t>(const std::string&, size_t)>;

// The values of a short INT64 tensor held in a Constant node (the plugin lists a TENSOR
// attribute as a tensor of the node's group, read here).
std::optional<std::vector<int64_t>> constant_ints(const Node& n, const TensorValues& read) {
  if (const NodeAttribute* a = n.find("value_ints"); a && a->type == "INTS" && a->value)
    if (const auto* v = std::get_if<std::vector<int64_t>>(a->value)) return *v;
  const NodeAttribute* a = n.find("value");
  if (!a || a->type != "TENSOR" || !a->tensor) return std::nullopt;
  const Tensor& t = *a->tensor;
  // A shape has one value per dimension: a longer tensor is no shape the spec can take.
  if (t.dtype() != DType::i64 || t.shape().size() > 1 || t.numel() > 64) return std::nullopt;
  return read(a->tensor_path, static_cast<size_t>(t.numel()));
}

class Importer {
 public:
  Importer(const std::vector<Node>& nodes, const std::vector<onnx_graph::ValueInfo>& inputs,
           const std::vector<onnx_graph::ValueInfo>& outputs, const std::vector<OnnxInitializer>& inits,
           std::optional<int64_t> opset, const std::function<std::vector<int64_t>(size_t)>& ints, const TensorValues& tensor_values)
      : nodes_(nodes), inputs_(inputs), outputs_(outputs), inits_list_(inits), opset_given_(opset), int64_values_(ints),
        tensor_values_(tensor_values) {
    for (size_t i = 0; i < inits.size(); ++i) inits_.emplace(inits[i].name, i);
    for (const auto& n : nodes)
      for (const auto& in : n.inputs) consumed_.insert(in);
    for (const auto& o : outputs) consumed_.insert(o.name);
  }

  ImportedSpec run() {
    opset_ = default_opset();
    const onnx_graph::ValueInfo& input = graph_input();
    if (outputs_.size() != 1) no("the graph has " + std::to_string(outputs_.size()) + " outputs, not one");
    current_ = input.name;
    out_.value_names.push_back(current_);
    int index = 0;
    for (const auto& n : nodes_) node(n, index++);
    if (current_ != outputs_[0].name)
      no("the chain of layers ends at " + quote_text(current_) + ", not at the graph's output " + quote_text(outputs_[0].name));
    for (size_t i = 0; i < inits_list_.size(); ++i)
      if (!used_.count(i)) no("initializer " + quote_text(inits_list_[i].name) + " is not a parameter of the layers");
    name_layers();
    check_shapes();
    if (out_.value_names.size() > 1) out_.value_names.back() = outputs_[0].name;
    out_.spec = std::move(spec_);
    return std::move(out_);
  }

 private:
  int64_t default_opset() const {
    if (!opset_given_) no("the model imports no version of the default operator set");
    return *opset_given_;
  }

  const onnx_graph::ValueInfo& graph_input() {
    const onnx_graph::ValueInfo* input = nullptr;
    for (const auto& in : inputs_) {
      if (inits_.count(in.name)) continue;  // IR < 4 lists initializers as inputs too
      if (input) no("the graph has more than one input");
      input = &in;
    }
    if (!input) no("the graph has no input");
    if (input->elem_type != kFloat) no("the graph's input " + quote_text(input->name) + " is not a float tensor");
    if (!input->has_shape) no("the graph's input has no shape");
    const auto& dims = input->dims;
    if (dims.size() < 2) no("the graph's input has rank " + std::to_string(dims.size()) + "; a batch of samples has at least 2");
    shape_ = {1};
    for (size_t i = 1; i < dims.size(); ++i) {
      if (!input->dim_params[i].empty() || dims[i] <= 0)
        no("dimension " + std::to_string(i) + " of the graph's input is not a fixed positive size");
      spec_.input_shape.push_back(dims[i]);
      shape_.push_back(dims[i]);
    }
    return *input;
  }

  // An initializer of f32 data and the given rank, by name.
  const OnnxInitializer& parameter(const std::string& what, const std::string& name, size_t rank) {
    auto it = inits_.find(name);
    if (it == inits_.end()) no(what + ": input " + quote_text(name) + " is not an initializer");
    const OnnxInitializer& t = inits_list_[it->second];
    if (t.type != "FLOAT" || t.dims.size() != rank)
      no(what + ": parameter " + quote_text(name) + " is " + t.type + " " + shape_text(t.dims) +
         ", not a float tensor of rank " + std::to_string(rank));
    used_.insert(it->second);
    out_.parameters.push_back(it->second);
    return t;
  }

  // The layer name a weight's name gives ("fc1.weight" -> "fc1"), and the bias name it needs.
  std::string layer_of(const std::string& what, const std::string& weight) {
    constexpr std::string_view suffix = ".weight";
    if (weight.size() <= suffix.size() || !weight.ends_with(suffix))
      no(what + ": its weight " + quote_text(weight) + " is not named <layer>.weight");
    std::string layer = weight.substr(0, weight.size() - suffix.size());
    if (layer.find('/') != std::string::npos || layer.find('\0') != std::string::npos)
      no(what + ": layer name " + quote_text(layer) + " holds '/'");
    if (!param_layers_.insert(layer).second) no(what + ": layer " + quote_text(layer) + " appears twice");
    return layer;
  }

  void outputs_unused_beyond_first(const Node& n, const std::string& what) {
    for (size_t k = 1; k < n.outputs.size(); ++k)
      if (!n.outputs[k].empty() && consumed_.count(n.outputs[k])) no(what + ": its output " + std::to_string(k) + " is used");
  }

  std::vector<int64_t> constant(const std::string& what, const std::string& name) {
    if (auto it = constants_.find(name); it != constants_.end()) return it->second;
    auto it = inits_.find(name);
    if (it == inits_.end()) no(what + ": its shape " + quote_text(name) + " is computed, not a constant");
    const OnnxInitializer& t = inits_list_[it->second];
    if (t.type != "INT64" || t.dims.size() != 1 || t.dims[0] > 8)
      no(what + ": its shape " + quote_text(name) + " is not a short INT64 vector");
    used_.insert(it->second);
    out_.constants.push_back(it->second);
    return int64_values_(it->second);
  }

  static Pair symmetric(const std::string& what, const std::vector<int64_t>& pads) {
    if (pads.size() != 4 || pads[0] != pads[2] || pads[1] != pads[3] || pads[0] < 0 || pads[1] < 0)
      no(what + ": pads " + shape_text(pads) + " are not the same on both sides of each axis");
    return {pads[0], pads[1]};
  }

  static void plain_window(const Node& n, const std::string& what) {
    const std::string pad = attr_string(n, what, "auto_pad", "NOTSET");
    if (pad != "NOTSET" && pad != "VALID") no(what + ": auto_pad " + pad + " is not expressible");
    for (int64_t d : attr_ints(n, what, "dilations", {1, 1}))
      if (d != 1) no(what + ": dilations other than 1");
  }

  void node(const Node& n, int index) {
    const std::string what = describe(n, index);
    if (!n.domain.empty() && n.domain != "ai.onnx") no(what + ": operator domain " + quote_text(n.domain));
    const std::string& op = n.op_type;
    if (op == "Constant") {
      if (n.outputs.size() == 1)
        if (auto v = constant_ints(n, tensor_values_)) constants_[n.outputs[0]] = *v;
      return;
    }
    if (n.inputs.empty() || n.inputs[0] != current_)
      no(what + " does not take the previous layer's output " + quote_text(current_) + ": the graph is not one chain");
    if (n.outputs.empty() || n.outputs[0].empty()) no(what + " has no output");
    outputs_unused_beyond_first(n, what);
    LayerSpec l;
    l.name.clear();
    if (op == "Gemm") {
      if (shape_.size() != 2) no(what + ": Gemm on input of rank " + std::to_string(shape_.size()));
      if (attr_float(n, what, "alpha", 1) != 1 || attr_float(n, what, "beta", 1) != 1 ||
          attr_int(n, what, "transA", 0) != 0)
        no(what + ": alpha, beta or transA other than PyTorch's Linear");
      if (attr_int(n, what, "transB", 0) != 1)
        no(what + ": transB = 0 keeps the weight as [in, out]; the spec's linear layer holds [out, in]");
      if (n.inputs.size() < 2) no(what + ": no weight");
      const OnnxInitializer& w = parameter(what, n.inputs[1], 2);
      l.type = LayerType::linear;
      l.name = layer_of(what, w.name);
      l.out = w.dims[0];
      l.in = w.dims[1];
      l.bias = n.inputs.size() > 2 && !n.inputs[2].empty();
      if (l.bias) bias(what, n.inputs[2], l);
      shape_ = {1, l.out};
    } else if (op == "Conv") {
      if (shape_.size() != 4) no(what + ": Conv on input of rank " + std::to_string(shape_.size()));
      plain_window(n, what);
      if (attr_int(n, what, "group", 1) != 1) no(what + ": grouped convolution");
      if (n.inputs.size() < 2) no(what + ": no weight");
      const OnnxInitializer& w = parameter(what, n.inputs[1], 4);
      l.type = LayerType::conv2d;
      l.name = layer_of(what, w.name);
      l.out = w.dims[0];
      l.in = w.dims[1];
      l.kernel = {w.dims[2], w.dims[3]};
      if (attr_ints(n, what, "kernel_shape", {l.kernel.h, l.kernel.w}) != std::vector<int64_t>{l.kernel.h, l.kernel.w})
        no(what + ": kernel_shape differs from the weight's shape");
      window(n, what, l);
      l.bias = n.inputs.size() > 2 && !n.inputs[2].empty();
      if (l.bias) bias(what, n.inputs[2], l);
    } else if (op == "MaxPool") {
      if (shape_.size() != 4) no(what + ": MaxPool on input of rank " + std::to_string(shape_.size()));
      plain_window(n, what);
      if (attr_int(n, what, "ceil_mode", 0) != 0 || attr_int(n, what, "storage_order", 0) != 0)
        no(what + ": ceil_mode or storage_order other than 0");
      const auto k = attr_ints(n, what, "kernel_shape", {});
      if (k.size() != 2) no(what + ": kernel_shape is not two sizes");
      l.type = LayerType::maxpool2d;
      l.kernel = {k[0], k[1]};
      window(n, what, l);
      if (!model_spec::padding_fits(l.kernel, l.padding)) no(what + ": padding wider than half the kernel");
    } else if (op == "Relu") {
      l.type = LayerType::relu;
    } else if (op == "Flatten") {
      const int64_t rank = static_cast<int64_t>(shape_.size());
      int64_t axis = attr_int(n, what, "axis", 1);
      if (axis < 0) axis += rank;
      if (axis != 1) no(what + ": Flatten at axis " + std::to_string(axis) + ", not 1");
      l.type = LayerType::flatten;
    } else if (op == "Reshape") {
      if (n.inputs.size() != 2) no(what + ": Reshape without a shape");
      if (attr_int(n, what, "allowzero", 0) != 0) no(what + ": allowzero");
      const std::vector<int64_t> to = constant(what, n.inputs[1]);
      const int64_t rest = features(what);
      const bool flattens = shape_.size() >= 2 && to.size() == 2 &&
                            ((to[0] == 0 && (to[1] == -1 || to[1] == rest)) || (to[0] == -1 && to[1] == rest));
      if (!flattens) no(what + ": Reshape to " + shape_text(to) + " is not a flatten of " + shape_text(shape_));
      l.type = LayerType::flatten;
    } else if (op == "Softmax") {
      const int64_t rank = static_cast<int64_t>(shape_.size());
      int64_t axis = attr_int(n, what, "axis", opset_ >= 13 ? -1 : 1);
      if (axis < 0) axis += rank;
      // Before opset 13 Softmax normalised everything after `axis` as one; that is one axis
      // only when it is the last.
      if (axis < 1 || axis >= rank || (opset_ < 13 && axis != rank - 1))
        no(what + ": Softmax over axis " + std::to_string(axis) + " of rank " + std::to_string(rank));
      l.type = LayerType::softmax;
      l.dim = axis;
    } else if (op == "Identity" || (op == "Dropout" && n.inputs.size() <= 2)) {
      current_ = n.outputs[0];
      return;
    } else {
      no(what + ": operator " + op + " has no layer in the spec");
    }
    if (l.type == LayerType::flatten) {
      shape_ = {1, features(what)};
    } else if (l.type == LayerType::conv2d || l.type == LayerType::maxpool2d) {
      Shape out;
      switch (model_spec::window_output(l.kernel, l.stride, l.padding, shape_, l.type == LayerType::conv2d ? l.out : shape_[1], out)) {
        case model_spec::WindowFit::fits: break;
        case model_spec::WindowFit::smaller_than_kernel: no(what + ": input " + shape_text(shape_) + " is smaller than the kernel");
        case model_spec::WindowFit::past_int64: no(what + ": input " + shape_text(shape_) + " padded has sizes past int64");
      }
      shape_ = std::move(out);
    }
    hints_.push_back(l.name.empty() ? hint(n) : std::string());
    spec_.layers.push_back(std::move(l));
    current_ = n.outputs[0];
    out_.value_names.push_back(current_);
  }

  // The product of the current shape's sizes after the batch; the sizes are any a file gives.
  int64_t features(const std::string& what) const {
    int64_t f = 1;
    for (size_t i = 1; i < shape_.size(); ++i)
      if (__builtin_mul_overflow(f, shape_[i], &f)) no(what + ": input " + shape_text(shape_) + " has more features than int64 counts");
    return f;
  }

  void window(const Node& n, const std::string& what, LayerSpec& l) {
    const auto s = attr_ints(n, what, "strides", {1, 1});
    if (s.size() != 2 || s[0] <= 0 || s[1] <= 0) no(what + ": strides " + shape_text(s));
    l.stride = {s[0], s[1]};
    l.padding = symmetric(what, attr_ints(n, what, "pads", {0, 0, 0, 0}));
  }

  void bias(const std::string& what, const std::string& name, const LayerSpec& l) {
    const OnnxInitializer& b = parameter(what, name, 1);
    if (b.name != l.name + ".bias") no(what + ": its bias " + quote_text(b.name) + " is not named " + quote_text(l.name + ".bias"));
    if (b.dims[0] != l.out) no(what + ": bias " + shape_text(b.dims) + " for " + std::to_string(l.out) + " outputs");
  }

  // A name for a layer without parameters from its node's name: torch.onnx names nodes
  // "/<module path>/<Op>", so "/relu1/Relu" gives "relu1".
  static std::string hint(const Node& n) {
    std::string name = n.name;
    if (!name.empty() && name[0] == '/') {
      const size_t last = name.rfind('/');
      name = last == 0 ? std::string() : name.substr(0, last);
      const size_t prev = name.rfind('/');
      name = name.substr(prev + 1);
    }
    if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return {};
    return name;
  }

  void name_layers() {
    std::set<std::string> taken(param_layers_.begin(), param_layers_.end());
    std::map<std::string, int> counts;
    for (size_t i = 0; i < spec_.layers.size(); ++i) {
      LayerSpec& l = spec_.layers[i];
      if (!l.name.empty()) continue;
      std::string name = hints_[i];
      const std::string type(model_spec::type_name(l.type));
      while (name.empty() || taken.count(name)) name = type + std::to_string(++counts[type]);
      taken.insert(name);
      l.name = std::move(name);
    }
  }

  void check_shapes() {
    try {
      model_spec::layer_shapes(spec_);
    } catch (const model_spec::SpecError& e) {
      no(e.reason());
    }
  }

  static constexpr int64_t kFloat = 1;  // TensorProto.FLOAT
  const std::vector<Node>& nodes_;
  const std::vector<onnx_graph::ValueInfo>& inputs_;
  const std::vector<onnx_graph::ValueInfo>& outputs_;
  const std::vector<OnnxInitializer>& inits_list_;
  std::optional<int64_t> opset_given_;
  const std::function<std::vector<int64_t>(size_t)>& int64_values_;
  const TensorValues& tensor_values_;
  std::map<std::string, size_t> inits_;
  std::set<std::string> consumed_;
  std::map<std::string, std::vector<int64_t>> constants_;
  std::set<size_t> used_;
  std::set<std::string> param_layers_;
  std::vector<std::string> hints_;
  std::vector<int64_t> shape_;
  std::string current_;
  int64_t opset_ = 0;
  SequentialSpec spec_;
  ImportedSpec out_;
};

}  // namespace

namespace {
// A graph ONNX Runtime would refuse (an attribute given twice, an operator with the wrong
// number of inputs) has no model to rebuild: its reason, or empty.
std::string invalid_node(const std::vector<Node>& nodes) {
  static const std::map<std::string, std::pair<size_t, size_t>> kArity = {
      {"Gemm", {2, 3}}, {"Conv", {2, 3}}, {"MatMul", {2, 2}}, {"Add", {2, 2}}, {"Relu", {1, 1}},
      {"MaxPool", {1, 1}}, {"Flatten", {1, 1}}, {"Softmax", {1, 1}}, {"Reshape", {2, 2}}, {"Constant", {0, 0}}};
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    std::set<std::string> names;
    for (const auto& a : n.attributes)
      if (!names.insert(a.name).second) return describe(n, static_cast<int>(i)) + " gives attribute '" + a.name + "' twice";
    auto it = kArity.find(n.op_type);
    if (it != kArity.end() && n.domain.empty() &&
        (n.inputs.size() < it->second.first || n.inputs.size() > it->second.second))
      return describe(n, static_cast<int>(i)) + " has " + std::to_string(n.inputs.size()) + " inputs";
  }
  return {};
}
}  // namespace

ImportedSpec import_spec(const Group& graph, const std::vector<OnnxInitializer>& initializers, std::optional<int64_t> opset,
                         const std::function<std::vector<int64_t>(size_t)>& int64_values,
                         const TensorValues& tensor_values, const std::string& file) {
  const std::vector<Node> nodes = onnx_graph::nodes_of(graph, file);
  if (std::string why = invalid_node(nodes); !why.empty()) {
    ImportedSpec r;
    r.reason = why + " (not valid ONNX)";
    return r;
  }
  const auto inputs = onnx_graph::values_of(graph, onnx_graph::kInputs, file);
  const auto outputs = onnx_graph::values_of(graph, onnx_graph::kOutputs, file);
  try {
    return Importer(nodes, inputs, outputs, initializers, opset, int64_values, tensor_values).run();
  } catch (const NoSpec& n) {
    ImportedSpec r;
    r.reason = n.why;
    return r;
  }
}

}  // namespace ckpt::layouts
