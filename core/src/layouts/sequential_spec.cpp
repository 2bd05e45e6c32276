#include "sequential_spec.hpp"

#include "text.hpp"

#include <set>

namespace ckpt::layouts {

namespace {

struct Bad {
  std::string why;
};

class Attrs {
 public:
  Attrs(const Group& g, std::string path) : g_(g), path_(std::move(path)) {}

  [[noreturn]] void bad(const std::string& what) const { throw Bad{path_ + ": " + what}; }

  int64_t positive(const char* name) const {
    const Value* v = g_.attribute(name);
    const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
    if (!i || *i <= 0) bad(std::string(name) + " must be a positive integer");
    return *i;
  }
  int64_t integer(const char* name, int64_t fallback) const {
    const Value* v = g_.attribute(name);
    if (!v) return fallback;
    const int64_t* i = std::get_if<int64_t>(v);
    if (!i) bad(std::string(name) + " must be an integer");
    return *i;
  }
  bool flag(const char* name, bool fallback) const {
    const Value* v = g_.attribute(name);
    if (!v) return fallback;
    const bool* b = std::get_if<bool>(v);
    if (!b) bad(std::string(name) + " must be a bool");
    return *b;
  }
  Pair pair(const char* name, const Pair* fallback, int64_t min) const {
    const Value* v = g_.attribute(name);
    if (!v && fallback) return *fallback;
    Pair p;
    const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
    const auto* a = v ? std::get_if<std::vector<int64_t>>(v) : nullptr;
    if (i) p = {*i, *i};
    else if (a && a->size() == 2) p = {(*a)[0], (*a)[1]};
    else bad(std::string(name) + " must be an integer or a pair [h, w]");
    if (p.h < min || p.w < min) bad(std::string(name) + " must be at least " + std::to_string(min));
    return p;
  }
  const std::string* text(const char* name) const {
    const Value* v = g_.attribute(name);
    return v ? std::get_if<std::string>(v) : nullptr;
  }

 private:
  const Group& g_;
  std::string path_;
};

LayerSpec read_layer(const Group& g, const std::string& name) {
  Attrs a(g, "model/spec/" + name);
  LayerSpec l;
  l.name = name;
  const std::string* type = a.text("type");
  if (!type) a.bad("type must be a string");
  l.type = *type;
  const Pair one{1, 1}, zero{0, 0};
  if (l.type == "linear") {
    l.in = a.positive("in_features");
    l.out = a.positive("out_features");
    l.bias = a.flag("bias", true);
  } else if (l.type == "conv2d") {
    l.in = a.positive("in_channels");
    l.out = a.positive("out_channels");
    l.kernel = a.pair("kernel_size", nullptr, 1);
    l.stride = a.pair("stride", &one, 1);
    l.padding = a.pair("padding", &zero, 0);
    l.bias = a.flag("bias", true);
  } else if (l.type == "maxpool2d") {
    l.kernel = a.pair("kernel_size", nullptr, 1);
    l.stride = a.pair("stride", &l.kernel, 1);
    l.padding = a.pair("padding", &zero, 0);
    if (2 * l.padding.h > l.kernel.h || 2 * l.padding.w > l.kernel.w) a.bad("padding must be at most half of kernel_size");
  } else if (l.type == "flatten") {
    if (a.integer("start_dim", 1) != 1 || a.integer("end_dim", -1) != -1)
      a.bad("only start_dim = 1 and end_dim = -1 are supported");
  } else if (l.type == "softmax") {
    l.dim = a.integer("dim", 1);
  } else if (l.type != "relu") {
    a.bad("layer type " + quote_text(l.type) + " has no ONNX operator here");
  }
  return l;
}

void write_pair(Group& g, const char* name, Pair p) {
  if (p.h == p.w) g.set(name, p.h);
  else g.set(name, std::vector<int64_t>{p.h, p.w});
}

}  // namespace

SpecOrReason read_spec(const Group& g) {
  try {
    Attrs a(g, "model/spec");
    const std::string* type = a.text("type");
    if (!type || *type != "sequential") a.bad("type must be \"sequential\"");
    SequentialSpec spec;
    const Value* shape = g.attribute("input_shape");
    const auto* dims = shape ? std::get_if<std::vector<int64_t>>(shape) : nullptr;
    if (!dims || dims->empty()) a.bad("input_shape must be a non-empty int64 array");
    for (int64_t d : *dims)
      if (d <= 0) a.bad("input_shape must hold positive sizes");
    spec.input_shape = *dims;
    const Value* layers = g.attribute("layers");
    const auto* names = layers ? std::get_if<std::vector<std::string>>(layers) : nullptr;
    if (!names || names->empty()) a.bad("layers must be a non-empty string array");
    std::set<std::string> seen;
    for (const std::string& name : *names) {
      if (!seen.insert(name).second) a.bad("layer " + quote_text(name) + " is listed twice");
      const Group* lg = g.find_group(name);
      if (!lg) a.bad("layer " + quote_text(name) + " has no group");
      spec.layers.push_back(read_layer(*lg, name));
    }
    return spec;
  } catch (const Bad& b) {
    return b.why;
  }
}

void write_spec(Group& parent, const std::string& name, const SequentialSpec& spec) {
  Group& g = parent.add_group(name);
  g.set("type", "sequential");
  g.set("input_shape", spec.input_shape);
  std::vector<std::string> names;
  for (const LayerSpec& l : spec.layers) names.push_back(l.name);
  g.set("layers", std::move(names));
  for (const LayerSpec& l : spec.layers) {
    Group& lg = g.add_group(l.name);
    lg.set("type", l.type);
    if (l.type == "linear") {
      lg.set("in_features", l.in);
      lg.set("out_features", l.out);
      lg.set("bias", l.bias);
    } else if (l.type == "conv2d") {
      lg.set("in_channels", l.in);
      lg.set("out_channels", l.out);
      write_pair(lg, "kernel_size", l.kernel);
      write_pair(lg, "stride", l.stride);
      write_pair(lg, "padding", l.padding);
      lg.set("bias", l.bias);
    } else if (l.type == "maxpool2d") {
      write_pair(lg, "kernel_size", l.kernel);
      write_pair(lg, "stride", l.stride);
      write_pair(lg, "padding", l.padding);
    } else if (l.type == "softmax") {
      lg.set("dim", l.dim);
    }
  }
}

std::variant<std::vector<std::vector<int64_t>>, std::string> layer_shapes(const SequentialSpec& spec) {
  std::vector<int64_t> s{1};
  s.insert(s.end(), spec.input_shape.begin(), spec.input_shape.end());
  std::vector<std::vector<int64_t>> out;
  for (const LayerSpec& l : spec.layers) {
    const std::string where = "model/spec/" + l.name + ": ";
    if (l.type == "linear") {
      if (s.size() != 2 || s[1] != l.in)
        return where + "expects input [N, " + std::to_string(l.in) + "], gets " + shape_text(s);
      s = {s[0], l.out};
    } else if (l.type == "conv2d" || l.type == "maxpool2d") {
      if (s.size() != 4 || (l.type == "conv2d" && s[1] != l.in))
        return where + "expects input [N, " + (l.type == "conv2d" ? std::to_string(l.in) : std::string("C")) +
               ", H, W], gets " + shape_text(s);
      if (s[2] + 2 * l.padding.h < l.kernel.h || s[3] + 2 * l.padding.w < l.kernel.w)
        return where + "input " + shape_text(s) + " is smaller than the kernel";
      s = {s[0], l.type == "conv2d" ? l.out : s[1], (s[2] + 2 * l.padding.h - l.kernel.h) / l.stride.h + 1,
           (s[3] + 2 * l.padding.w - l.kernel.w) / l.stride.w + 1};
    } else if (l.type == "flatten") {
      if (s.size() < 2) return where + "expects input [N, ...], gets " + shape_text(s);
      int64_t n = 1;
      for (size_t i = 1; i < s.size(); ++i) n *= s[i];
      s = {s[0], n};
    } else if (l.type == "softmax") {
      const int64_t rank = static_cast<int64_t>(s.size());
      const int64_t axis = l.dim < 0 ? l.dim + rank : l.dim;
      if (axis < 1 || axis >= rank) return where + "dim " + std::to_string(l.dim) + " is not a non-batch dimension of " + shape_text(s);
    }
    out.push_back(s);
  }
  return out;
}

std::vector<ParameterSpec> layer_parameters(const LayerSpec& l) {
  std::vector<ParameterSpec> p;
  if (l.type == "linear") p.push_back({l.name + ".weight", {l.out, l.in}});
  else if (l.type == "conv2d") p.push_back({l.name + ".weight", {l.out, l.in, l.kernel.h, l.kernel.w}});
  else return p;
  if (l.bias) p.push_back({l.name + ".bias", {l.out}});
  return p;
}

}  // namespace ckpt::layouts
