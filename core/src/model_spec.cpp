#include <ckpt/model_spec.hpp>
#include <ckpt/sdk_quote.hpp>

#include <array>
#include <limits>
#include <optional>
#include <set>

namespace ckpt::model_spec {

namespace {

using sdk::quote_text;
using sdk::shape_text;

constexpr std::array<std::pair<LayerType, std::string_view>, 6> kTypes{{
    {LayerType::linear, "linear"},
    {LayerType::conv2d, "conv2d"},
    {LayerType::maxpool2d, "maxpool2d"},
    {LayerType::relu, "relu"},
    {LayerType::flatten, "flatten"},
    {LayerType::softmax, "softmax"},
}};
constexpr std::string_view kKnown = "linear, conv2d, maxpool2d, relu, flatten, softmax";

// What a refused attribute held, for the long wording.
std::string found(const Value* v) {
  if (!v) return "it is missing";
  return "got " + std::string(value_type_name(value_type(*v))) + " " + value_to_string(*v);
}

std::string got(const Value* v) { return v ? value_to_string(*v) : "nothing"; }

// A group's attributes read with the spec's rules; every refusal names the group's path.
class Attrs {
 public:
  Attrs(const Group& g, std::string path) : g_(g), path_(std::move(path)) {}

  [[noreturn]] void refuse(const std::string& reason, const std::string& detail) const {
    throw SpecError(path_ + ": " + reason, path_ + ": " + detail);
  }
  [[noreturn]] void refuse(const std::string& both) const { refuse(both, both); }

  // Required, > 0.
  int64_t positive(const char* name) const {
    const Value* v = g_.attribute(name);
    const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
    const std::string what = std::string(name) + " must be a positive integer";
    if (!i || *i <= 0) refuse(what, what + "; " + found(v));
    return *i;
  }
  int64_t integer(const char* name, int64_t fallback) const {
    const Value* v = g_.attribute(name);
    if (!v) return fallback;
    const int64_t* i = std::get_if<int64_t>(v);
    const std::string what = std::string(name) + " must be an integer";
    if (!i) refuse(what, what + "; " + found(v));
    return *i;
  }
  bool flag(const char* name, bool fallback) const {
    const Value* v = g_.attribute(name);
    if (!v) return fallback;
    const bool* b = std::get_if<bool>(v);
    const std::string what = std::string(name) + " must be a bool";
    if (!b) refuse(what, what + "; " + found(v));
    return *b;
  }
  // An integer or an [h, w] pair, each >= min; `fallback` when absent (required without one).
  Pair pair(const char* name, std::optional<Pair> fallback, int64_t min) const {
    const Value* v = g_.attribute(name);
    if (!v && fallback) return *fallback;
    const std::string detail = std::string(name) + " must be " + (min > 0 ? "a positive" : "a non-negative") +
                               " integer or a pair [h, w] of them; " + found(v);
    Pair p;
    const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
    const auto* a = v ? std::get_if<std::vector<int64_t>>(v) : nullptr;
    if (i) p = {*i, *i};
    else if (a && a->size() == 2) p = {(*a)[0], (*a)[1]};
    else refuse(std::string(name) + " must be an integer or a pair [h, w]", detail);
    if (p.h < min || p.w < min) refuse(std::string(name) + " must be at least " + std::to_string(min), detail);
    return p;
  }

 private:
  const Group& g_;
  std::string path_;
};

void set_pair(Group& g, const char* name, Pair p) {
  if (p.h == p.w) g.set(name, p.h);
  else g.set(name, std::vector<int64_t>{p.h, p.w});
}

[[noreturn]] void refuse_input(const LayerSpec& l, const std::string& want_short, const std::string& want_long, const Shape& s) {
  const std::string where = "model/spec/" + l.name + ": ";
  throw SpecError(where + "expects input " + want_short + ", gets " + shape_text(s),
                  where + "expects input " + want_long + " with N > 0, got " + shape_string(s));
}

// True when `s` has a batch dimension N > 0 and, after it, the sizes of `want` (-1 for any).
bool fits(const Shape& s, const Shape& want) {
  bool ok = s.size() == want.size() + 1 && s[0] > 0;
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || s[i + 1] == want[i];
  return ok;
}

Shape window_output(const LayerSpec& l, const Shape& s, int64_t channels) {
  Shape out;
  const std::string where = "model/spec/" + l.name + ": ";
  switch (model_spec::window_output(l.kernel, l.stride, l.padding, s, channels, out)) {
    case WindowFit::fits: return out;
    case WindowFit::smaller_than_kernel:
      throw SpecError(where + "input " + shape_text(s) + " is smaller than the kernel",
                      where + "input " + shape_string(s) + " is smaller than the kernel");
    case WindowFit::past_int64: break;
  }
  const std::string why = where + "input " + shape_text(s) + " padded by " + shape_text(Shape{l.padding.h, l.padding.w}) + " has sizes past int64";
  throw SpecError(why, why);
}

}  // namespace

// 2 * padding <= kernel, written so that no size of a file or spec overflows.
bool padding_fits(Pair kernel, Pair padding) { return padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2; }

WindowFit window_output(Pair k, Pair s, Pair p, const Shape& in, int64_t channels, Shape& output) {
  // In 128 bits: the sizes are any int64 a spec or a file gives.
  using Wide = __int128;
  const Wide h = Wide{in[2]} + 2 * Wide{p.h}, w = Wide{in[3]} + 2 * Wide{p.w};
  if (h < k.h || w < k.w) return WindowFit::smaller_than_kernel;
  const Wide oh = (h - k.h) / s.h + 1, ow = (w - k.w) / s.w + 1;
  if (oh > std::numeric_limits<int64_t>::max() || ow > std::numeric_limits<int64_t>::max()) return WindowFit::past_int64;
  output = {in[0], channels, static_cast<int64_t>(oh), static_cast<int64_t>(ow)};
  return WindowFit::fits;
}

std::string_view type_name(LayerType type) {
  for (const auto& [t, n] : kTypes)
    if (t == type) return n;
  return "?";
}

LayerSpec parse_layer(const Group& g, const std::string& name) {
  Attrs a(g, "model/spec/" + name);
  LayerSpec l;
  l.name = name;
  const Value* tv = g.attribute("type");
  const std::string* type = tv ? std::get_if<std::string>(tv) : nullptr;
  if (!type) a.refuse("type must be a string", "type must be a string naming a layer (" + std::string(kKnown) + ")");
  bool known = false;
  for (const auto& [t, n] : kTypes)
    if (n == *type) {
      l.type = t;
      known = true;
    }
  // The short wording is the ONNX layout's, which said what it could not map; the types it
  // names are the same.
  if (!known)
    a.refuse("layer type " + quote_text(*type) + " has no ONNX operator here",
             "unknown layer type \"" + *type + "\" (known: " + std::string(kKnown) + ")");
  const Pair one{1, 1}, zero{0, 0};
  switch (l.type) {
    case LayerType::linear:
      l.in = a.positive("in_features");
      l.out = a.positive("out_features");
      l.bias = a.flag("bias", true);
      break;
    case LayerType::conv2d:
      l.in = a.positive("in_channels");
      l.out = a.positive("out_channels");
      l.kernel = a.pair("kernel_size", std::nullopt, 1);
      l.stride = a.pair("stride", one, 1);
      l.padding = a.pair("padding", zero, 0);
      l.bias = a.flag("bias", true);
      break;
    case LayerType::maxpool2d:
      l.kernel = a.pair("kernel_size", std::nullopt, 1);
      l.stride = a.pair("stride", l.kernel, 1);
      l.padding = a.pair("padding", zero, 0);
      // PyTorch's rule; a wider padding would make windows of padding only.
      if (!padding_fits(l.kernel, l.padding)) a.refuse("padding must be at most half of kernel_size");
      break;
    case LayerType::flatten:
      if (a.integer("start_dim", 1) != 1 || a.integer("end_dim", -1) != -1)
        a.refuse("only start_dim = 1 and end_dim = -1 are supported");
      break;
    case LayerType::softmax:
      l.dim = a.integer("dim", 1);
      break;
    case LayerType::relu:
      break;
  }
  return l;
}

SequentialSpec parse(const Group& g) {
  Attrs a(g, "model/spec");
  const Value* type = g.attribute("type");
  const std::string* ts = type ? std::get_if<std::string>(type) : nullptr;
  if (!ts || *ts != "sequential") a.refuse("type must be \"sequential\"", "type must be \"sequential\"; got " + got(type));
  SequentialSpec spec;
  const Value* shape = g.attribute("input_shape");
  const auto* dims = shape ? std::get_if<std::vector<int64_t>>(shape) : nullptr;
  const std::string shape_detail = "input_shape must be a non-empty int64 array of positive sizes; got " + got(shape);
  if (!dims || dims->empty()) a.refuse("input_shape must be a non-empty int64 array", shape_detail);
  for (int64_t d : *dims)
    if (d <= 0) a.refuse("input_shape must hold positive sizes", shape_detail);
  spec.input_shape = *dims;
  const Value* lv = g.attribute("layers");
  const auto* names = lv ? std::get_if<std::vector<std::string>>(lv) : nullptr;
  if (!names || names->empty())
    a.refuse("layers must be a non-empty string array", "layers must be a non-empty string array of layer names; got " + got(lv));
  std::set<std::string> seen;
  for (const std::string& name : *names) {
    const std::string twice = "layer " + quote_text(name) + " is listed twice";
    const std::string no_group = "layer " + quote_text(name) + " has no group";
    const bool repeated = !seen.insert(name).second;
    // A name a document cannot hold (empty, '/' or NUL) has no group either; the long wording
    // says why.
    try {
      check_name(name);
    } catch (const UsageError& e) {
      a.refuse(repeated ? twice : no_group, "layer name \"" + name + "\": " + e.what());
    }
    if (repeated) a.refuse(twice, "layer \"" + name + "\" is listed twice in layers");
    const Group* lg = g.find_group(name);
    if (!lg) a.refuse(no_group, "layer \"" + name + "\" is listed in layers but has no group");
    spec.layers.push_back(parse_layer(*lg, name));
  }
  return spec;
}

void describe(const LayerSpec& l, Group& g) {
  g.set("type", std::string(type_name(l.type)));
  switch (l.type) {
    case LayerType::linear:
      g.set("in_features", l.in);
      g.set("out_features", l.out);
      g.set("bias", l.bias);
      break;
    case LayerType::conv2d:
      g.set("in_channels", l.in);
      g.set("out_channels", l.out);
      set_pair(g, "kernel_size", l.kernel);
      set_pair(g, "stride", l.stride);
      set_pair(g, "padding", l.padding);
      g.set("bias", l.bias);
      break;
    case LayerType::maxpool2d:
      set_pair(g, "kernel_size", l.kernel);
      set_pair(g, "stride", l.stride);
      set_pair(g, "padding", l.padding);
      break;
    case LayerType::softmax:
      g.set("dim", l.dim);
      break;
    case LayerType::relu:
    case LayerType::flatten:
      break;
  }
}

void write(Group& parent, const std::string& name, const SequentialSpec& spec) {
  Group& g = parent.add_group(name);
  g.set("type", "sequential");
  g.set("input_shape", spec.input_shape);
  std::vector<std::string> names;
  for (const LayerSpec& l : spec.layers) names.push_back(l.name);
  g.set("layers", std::move(names));
  for (const LayerSpec& l : spec.layers) describe(l, g.add_group(l.name));
}

Shape output_shape(const LayerSpec& l, const Shape& s) {
  const std::string in = std::to_string(l.in);
  switch (l.type) {
    case LayerType::linear:
      if (!fits(s, {l.in})) refuse_input(l, "[N, " + in + "]", "of shape [N, " + in + "]", s);
      return {s[0], l.out};
    case LayerType::conv2d:
      if (!fits(s, {l.in, -1, -1})) refuse_input(l, "[N, " + in + ", H, W]", "of shape [N, " + in + ", *, *]", s);
      return window_output(l, s, l.out);
    case LayerType::maxpool2d:
      if (!fits(s, {-1, -1, -1})) refuse_input(l, "[N, C, H, W]", "of shape [N, *, *, *]", s);
      return window_output(l, s, s[1]);
    case LayerType::flatten: {
      if (s.size() < 2 || s[0] <= 0) refuse_input(l, "[N, ...]", "[N, ...]", s);
      int64_t n = 1;
      for (size_t i = 1; i < s.size(); ++i)
        if (__builtin_mul_overflow(n, s[i], &n)) {
          const std::string why = "model/spec/" + l.name + ": input " + shape_text(s) + " has more features than int64 counts";
          throw SpecError(why, why);
        }
      return {s[0], n};
    }
    case LayerType::relu:
      if (s.empty() || s[0] <= 0) {
        const std::string why = "model/spec/" + l.name + ": expects input with a batch dimension N > 0, got " + shape_string(s);
        throw SpecError(why, why);
      }
      return s;
    case LayerType::softmax: {
      const int64_t rank = static_cast<int64_t>(s.size());
      const int64_t axis = l.dim < 0 ? l.dim + rank : l.dim;
      if (rank < 2 || s[0] <= 0 || axis < 1 || axis >= rank) {
        const std::string where = "model/spec/" + l.name + ": dim " + std::to_string(l.dim);
        throw SpecError(where + " is not a non-batch dimension of " + shape_text(s),
                        where + " must name a non-batch dimension of input " + shape_string(s));
      }
      return s;
    }
  }
  return s;
}

std::vector<Shape> layer_shapes(const SequentialSpec& spec) {
  Shape s{1};
  s.insert(s.end(), spec.input_shape.begin(), spec.input_shape.end());
  std::vector<Shape> out;
  for (const LayerSpec& l : spec.layers) out.push_back(s = output_shape(l, s));
  return out;
}

std::vector<ParameterSpec> parameters(const LayerSpec& l) {
  std::vector<ParameterSpec> p;
  if (l.type == LayerType::linear) p.push_back({"weight", {l.out, l.in}});
  else if (l.type == LayerType::conv2d) p.push_back({"weight", {l.out, l.in, l.kernel.h, l.kernel.w}});
  else return p;
  if (l.bias) p.push_back({"bias", {l.out}});
  return p;
}

}  // namespace ckpt::model_spec
