#include "graph_import.hpp"

#include "dtypes.hpp"
#include "text.hpp"

#include <cstring>
#include <map>
#include <set>

namespace ckpt_onnx {

namespace {

struct NoSpec {
  std::string why;
};
[[noreturn]] void no(const std::string& why) { throw NoSpec{why}; }

std::string describe(const onnx::NodeProto& n, int index) {
  return "node " + std::to_string(index) + " (" + n.op_type() + (n.name().empty() ? "" : " " + quote_text(n.name())) + ")";
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t attr_int(const onnx::NodeProto& n, const std::string& what, const char* name, int64_t fallback) {
  const auto* a = find_attr(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::INT) no(what + ": attribute " + name + " is not an int");
  return a->i();
}

float attr_float(const onnx::NodeProto& n, const std::string& what, const char* name, float fallback) {
  const auto* a = find_attr(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::FLOAT) no(what + ": attribute " + name + " is not a float");
  return a->f();
}

std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& what, const char* name,
                               std::vector<int64_t> fallback) {
  const auto* a = find_attr(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::INTS) no(what + ": attribute " + name + " is not a list of ints");
  return {a->ints().begin(), a->ints().end()};
}

std::string attr_string(const onnx::NodeProto& n, const std::string& what, const char* name, std::string fallback) {
  const auto* a = find_attr(n, name);
  if (!a) return fallback;
  if (a->type() != onnx::AttributeProto::STRING) no(what + ": attribute " + name + " is not a string");
  return a->s();
}

// The values of an INT64 tensor held in a Constant node.
std::optional<std::vector<int64_t>> constant_ints(const onnx::NodeProto& n) {
  if (const auto* a = find_attr(n, "value_ints"); a && a->type() == onnx::AttributeProto::INTS)
    return std::vector<int64_t>(a->ints().begin(), a->ints().end());
  const auto* a = find_attr(n, "value");
  if (!a || a->type() != onnx::AttributeProto::TENSOR) return std::nullopt;
  const onnx::TensorProto& t = a->t();
  if (t.data_type() != onnx::TensorProto_DataType_INT64 || t.dims_size() > 1) return std::nullopt;
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    if (raw.size() % 8) return std::nullopt;
    std::vector<int64_t> v(raw.size() / 8);
    std::memcpy(v.data(), raw.data(), raw.size());
    return v;
  }
  return std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end());
}

class Importer {
 public:
  Importer(const onnx::GraphProto& g, const ScannedModel& m, const std::function<std::vector<int64_t>(size_t)>& ints)
      : g_(g), m_(m), int64_values_(ints) {
    for (size_t i = 0; i < m.initializers.size(); ++i) inits_.emplace(m.initializers[i].name, i);
    for (const auto& n : g.node())
      for (const auto& in : n.input()) consumed_.insert(in);
    for (const auto& o : g.output()) consumed_.insert(o.name());
  }

  ImportedSpec run() {
    opset_ = default_opset();
    const onnx::ValueInfoProto& input = graph_input();
    if (g_.output_size() != 1) no("the graph has " + std::to_string(g_.output_size()) + " outputs, not one");
    current_ = input.name();
    out_.value_names.push_back(current_);
    int index = 0;
    for (const auto& n : g_.node()) node(n, index++);
    if (current_ != g_.output(0).name())
      no("the chain of layers ends at " + quote_text(current_) + ", not at the graph's output " + quote_text(g_.output(0).name()));
    for (size_t i = 0; i < m_.initializers.size(); ++i)
      if (!used_.count(i)) no("initializer " + quote_text(m_.initializers[i].name) + " is not a parameter of the layers");
    name_layers();
    check_shapes();
    if (out_.value_names.size() > 1) out_.value_names.back() = g_.output(0).name();
    out_.spec = std::move(spec_);
    return std::move(out_);
  }

 private:
  int64_t default_opset() const {
    for (const auto& [domain, version] : m_.opsets)
      if (domain.empty() || domain == "ai.onnx") return version;
    no("the model imports no version of the default operator set");
  }

  const onnx::ValueInfoProto& graph_input() {
    const onnx::ValueInfoProto* input = nullptr;
    for (const auto& in : g_.input()) {
      if (inits_.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
      if (input) no("the graph has more than one input");
      input = &in;
    }
    if (!input) no("the graph has no input");
    const auto& type = input->type();
    if (!type.has_tensor_type() || type.tensor_type().elem_type() != onnx::TensorProto_DataType_FLOAT)
      no("the graph's input " + quote_text(input->name()) + " is not a float tensor");
    if (!type.tensor_type().has_shape()) no("the graph's input has no shape");
    const auto& dims = type.tensor_type().shape().dim();
    if (dims.size() < 2) no("the graph's input has rank " + std::to_string(dims.size()) + "; a batch of samples has at least 2");
    shape_ = {1};
    for (int i = 1; i < dims.size(); ++i) {
      if (!dims[i].has_dim_value() || dims[i].dim_value() <= 0)
        no("dimension " + std::to_string(i) + " of the graph's input is not a fixed positive size");
      spec_.input_shape.push_back(dims[i].dim_value());
      shape_.push_back(dims[i].dim_value());
    }
    return *input;
  }

  // An initializer of f32 data and the given rank, by name.
  const Initializer& parameter(const std::string& what, const std::string& name, size_t rank) {
    auto it = inits_.find(name);
    if (it == inits_.end()) no(what + ": input " + quote_text(name) + " is not an initializer");
    const Initializer& t = m_.initializers[it->second];
    if (t.onnx_type != onnx_type::kFloat || t.dims.size() != rank)
      no(what + ": parameter " + quote_text(name) + " is " + onnx_type_name(t.onnx_type) + " " + shape_text(t.dims) +
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

  void outputs_unused_beyond_first(const onnx::NodeProto& n, const std::string& what) {
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty() && consumed_.count(n.output(k))) no(what + ": its output " + std::to_string(k) + " is used");
  }

  std::vector<int64_t> constant(const std::string& what, const std::string& name) {
    if (auto it = constants_.find(name); it != constants_.end()) return it->second;
    auto it = inits_.find(name);
    if (it == inits_.end()) no(what + ": its shape " + quote_text(name) + " is computed, not a constant");
    const Initializer& t = m_.initializers[it->second];
    if (t.onnx_type != onnx_type::kInt64 || t.dims.size() != 1 || t.numel > 8)
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

  static void plain_window(const onnx::NodeProto& n, const std::string& what) {
    const std::string pad = attr_string(n, what, "auto_pad", "NOTSET");
    if (pad != "NOTSET" && pad != "VALID") no(what + ": auto_pad " + pad + " is not expressible");
    for (int64_t d : attr_ints(n, what, "dilations", {1, 1}))
      if (d != 1) no(what + ": dilations other than 1");
  }

  void node(const onnx::NodeProto& n, int index) {
    const std::string what = describe(n, index);
    if (!n.domain().empty() && n.domain() != "ai.onnx") no(what + ": operator domain " + quote_text(n.domain()));
    const std::string& op = n.op_type();
    if (op == "Constant") {
      if (n.output_size() == 1)
        if (auto v = constant_ints(n)) constants_[n.output(0)] = *v;
      return;
    }
    if (n.input_size() == 0 || n.input(0) != current_)
      no(what + " does not take the previous layer's output " + quote_text(current_) + ": the graph is not one chain");
    if (n.output_size() == 0 || n.output(0).empty()) no(what + " has no output");
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
      if (n.input_size() < 2) no(what + ": no weight");
      const Initializer& w = parameter(what, n.input(1), 2);
      l.type = "linear";
      l.name = layer_of(what, w.name);
      l.out = w.dims[0];
      l.in = w.dims[1];
      l.bias = n.input_size() > 2 && !n.input(2).empty();
      if (l.bias) bias(what, n.input(2), l);
      shape_ = {1, l.out};
    } else if (op == "Conv") {
      if (shape_.size() != 4) no(what + ": Conv on input of rank " + std::to_string(shape_.size()));
      plain_window(n, what);
      if (attr_int(n, what, "group", 1) != 1) no(what + ": grouped convolution");
      if (n.input_size() < 2) no(what + ": no weight");
      const Initializer& w = parameter(what, n.input(1), 4);
      l.type = "conv2d";
      l.name = layer_of(what, w.name);
      l.out = w.dims[0];
      l.in = w.dims[1];
      l.kernel = {w.dims[2], w.dims[3]};
      if (attr_ints(n, what, "kernel_shape", {l.kernel.h, l.kernel.w}) != std::vector<int64_t>{l.kernel.h, l.kernel.w})
        no(what + ": kernel_shape differs from the weight's shape");
      window(n, what, l);
      l.bias = n.input_size() > 2 && !n.input(2).empty();
      if (l.bias) bias(what, n.input(2), l);
    } else if (op == "MaxPool") {
      if (shape_.size() != 4) no(what + ": MaxPool on input of rank " + std::to_string(shape_.size()));
      plain_window(n, what);
      if (attr_int(n, what, "ceil_mode", 0) != 0 || attr_int(n, what, "storage_order", 0) != 0)
        no(what + ": ceil_mode or storage_order other than 0");
      const auto k = attr_ints(n, what, "kernel_shape", {});
      if (k.size() != 2) no(what + ": kernel_shape is not two sizes");
      l.type = "maxpool2d";
      l.kernel = {k[0], k[1]};
      window(n, what, l);
      if (2 * l.padding.h > l.kernel.h || 2 * l.padding.w > l.kernel.w) no(what + ": padding wider than half the kernel");
    } else if (op == "Relu") {
      l.type = "relu";
    } else if (op == "Flatten") {
      const int64_t rank = static_cast<int64_t>(shape_.size());
      int64_t axis = attr_int(n, what, "axis", 1);
      if (axis < 0) axis += rank;
      if (axis != 1) no(what + ": Flatten at axis " + std::to_string(axis) + ", not 1");
      l.type = "flatten";
    } else if (op == "Reshape") {
      if (n.input_size() != 2) no(what + ": Reshape without a shape");
      if (attr_int(n, what, "allowzero", 0) != 0) no(what + ": allowzero");
      const std::vector<int64_t> to = constant(what, n.input(1));
      int64_t rest = 1;
      for (size_t i = 1; i < shape_.size(); ++i) rest *= shape_[i];
      const bool flattens = shape_.size() >= 2 && to.size() == 2 &&
                            ((to[0] == 0 && (to[1] == -1 || to[1] == rest)) || (to[0] == -1 && to[1] == rest));
      if (!flattens) no(what + ": Reshape to " + shape_text(to) + " is not a flatten of " + shape_text(shape_));
      l.type = "flatten";
    } else if (op == "Softmax") {
      const int64_t rank = static_cast<int64_t>(shape_.size());
      int64_t axis = attr_int(n, what, "axis", opset_ >= 13 ? -1 : 1);
      if (axis < 0) axis += rank;
      // Before opset 13 Softmax normalised everything after `axis` as one; that is one axis
      // only when it is the last.
      if (axis < 1 || axis >= rank || (opset_ < 13 && axis != rank - 1))
        no(what + ": Softmax over axis " + std::to_string(axis) + " of rank " + std::to_string(rank));
      l.type = "softmax";
      l.dim = axis;
    } else if (op == "Identity" || (op == "Dropout" && n.input_size() <= 2)) {
      current_ = n.output(0);
      return;
    } else {
      no(what + ": operator " + op + " has no layer in the spec");
    }
    if (l.type == "flatten") {
      int64_t f = 1;
      for (size_t i = 1; i < shape_.size(); ++i) f *= shape_[i];
      shape_ = {1, f};
    } else if (l.type == "conv2d" || l.type == "maxpool2d") {
      if (shape_[2] + 2 * l.padding.h < l.kernel.h || shape_[3] + 2 * l.padding.w < l.kernel.w)
        no(what + ": input " + shape_text(shape_) + " is smaller than the kernel");
      shape_ = {1, l.type == "conv2d" ? l.out : shape_[1], (shape_[2] + 2 * l.padding.h - l.kernel.h) / l.stride.h + 1,
                (shape_[3] + 2 * l.padding.w - l.kernel.w) / l.stride.w + 1};
    }
    hints_.push_back(l.name.empty() ? hint(n) : std::string());
    spec_.layers.push_back(std::move(l));
    current_ = n.output(0);
    out_.value_names.push_back(current_);
  }

  void window(const onnx::NodeProto& n, const std::string& what, LayerSpec& l) {
    const auto s = attr_ints(n, what, "strides", {1, 1});
    if (s.size() != 2 || s[0] <= 0 || s[1] <= 0) no(what + ": strides " + shape_text(s));
    l.stride = {s[0], s[1]};
    l.padding = symmetric(what, attr_ints(n, what, "pads", {0, 0, 0, 0}));
  }

  void bias(const std::string& what, const std::string& name, const LayerSpec& l) {
    const Initializer& b = parameter(what, name, 1);
    if (b.name != l.name + ".bias") no(what + ": its bias " + quote_text(b.name) + " is not named " + quote_text(l.name + ".bias"));
    if (b.dims[0] != l.out) no(what + ": bias " + shape_text(b.dims) + " for " + std::to_string(l.out) + " outputs");
  }

  // A name for a layer without parameters from its node's name: torch.onnx names nodes
  // "/<module path>/<Op>", so "/relu1/Relu" gives "relu1".
  static std::string hint(const onnx::NodeProto& n) {
    std::string name = n.name();
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
      while (name.empty() || taken.count(name)) name = l.type + std::to_string(++counts[l.type]);
      taken.insert(name);
      l.name = std::move(name);
    }
  }

  void check_shapes() {
    auto shapes = layer_shapes(spec_);
    if (auto* why = std::get_if<std::string>(&shapes)) no(*why);
  }

  const onnx::GraphProto& g_;
  const ScannedModel& m_;
  const std::function<std::vector<int64_t>(size_t)>& int64_values_;
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
std::string invalid_node(const onnx::GraphProto& g) {
  static const std::map<std::string, std::pair<int, int>> kArity = {
      {"Gemm", {2, 3}}, {"Conv", {2, 3}}, {"MatMul", {2, 2}}, {"Add", {2, 2}}, {"Relu", {1, 1}},
      {"MaxPool", {1, 1}}, {"Flatten", {1, 1}}, {"Softmax", {1, 1}}, {"Reshape", {2, 2}}, {"Constant", {0, 0}}};
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& n = g.node(i);
    std::set<std::string> names;
    for (const auto& a : n.attribute())
      if (!names.insert(a.name()).second) return describe(n, i) + " gives attribute '" + a.name() + "' twice";
    auto it = kArity.find(n.op_type());
    if (it != kArity.end() && n.domain().empty() &&
        (n.input_size() < it->second.first || n.input_size() > it->second.second))
      return describe(n, i) + " has " + std::to_string(n.input_size()) + " inputs";
  }
  return {};
}
}  // namespace

std::string shadowed_value(const onnx::GraphProto& g, const ScannedModel& model) {
  std::set<std::string> defined;
  for (const auto& i : model.initializers) defined.insert(i.name);
  for (const auto& in : g.input()) defined.insert(in.name());
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& out : g.node(i).output())
      if (!out.empty() && !defined.insert(out).second)
        return describe(g.node(i), i) + " outputs '" + out + "', a name an initializer, input or earlier node already gives";
  return {};
}

ImportedSpec import_spec(const onnx::GraphProto& graph, const ScannedModel& model,
                         const std::function<std::vector<int64_t>(size_t)>& int64_values) {
  if (std::string why = invalid_node(graph); !why.empty()) {
    ImportedSpec r;
    r.reason = why + " (not valid ONNX)";
    return r;
  }
  try {
    return Importer(graph, model, int64_values).run();
  } catch (const NoSpec& n) {
    ImportedSpec r;
    r.reason = n.why;
    return r;
  }
}

}  // namespace ckpt_onnx
