// The rules of model/spec (docs/schema.md): a sequential model of linear, conv2d, maxpool2d,
// relu, flatten and softmax layers, each layer's defaults, its input and output shapes, its
// parameters, and the reasons a spec is refused. One copy for the trainer (train/, which builds
// oneDNN layers from the parsed layers) and the ONNX layout (core/src/layouts/, which maps them
// onto ONNX operators and back); libckpt holds it because libckpt must not link oneDNN.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/errors.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::model_spec {

struct Pair {
  int64_t h = 0, w = 0;
  bool operator==(const Pair&) const = default;
};

enum class LayerType { linear, conv2d, maxpool2d, relu, flatten, softmax };
// The name a spec gives the type ("linear", ...).
std::string_view type_name(LayerType type);

// One layer with its defaults filled in. Only the members of its type mean anything.
struct LayerSpec {
  std::string name;
  LayerType type = LayerType::relu;
  int64_t in = 0, out = 0;  // features (linear) or channels (conv2d)
  Pair kernel{}, stride{}, padding{};  // conv2d, maxpool2d
  bool bias = true;                    // linear, conv2d
  int64_t dim = 1;                     // softmax
};

struct SequentialSpec {
  std::vector<int64_t> input_shape;  // one sample, without the batch dimension
  std::vector<LayerSpec> layers;
};

// A spec or an input shape refused, in two wordings of one problem. reason() is the short one
// the ONNX layout keeps in files (extra/onnx/@spec, metadata ckpt.graph) and compares on read,
// so it stays word for word; what() adds what was found and the choices, for a person fixing a
// config (the trainer's messages). Both start with the place: "model/spec[/<layer>]: ".
class SpecError : public UsageError {
 public:
  SpecError(std::string reason, const std::string& detail) : UsageError(detail), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// The whole spec group (model/spec): every layer parsed; throws SpecError. The layers are not
// yet checked to chain: layer_shapes does that.
SequentialSpec parse(const Group& spec);
// One layer's group, `name` being its name in layers; throws SpecError.
LayerSpec parse_layer(const Group& layer, const std::string& name);

// The attributes that rebuild `layer` (type and hyper-parameters, defaults written out, a
// square pair as one integer as PyTorch's kernel_size=5), set on `group`.
void describe(const LayerSpec& layer, Group& group);
// `spec` as the group `name` of `parent`.
void write(Group& parent, const std::string& name, const SequentialSpec& spec);

// The layer's output shape for `input` (batch first, N > 0); throws SpecError when it does not
// fit.
Shape output_shape(const LayerSpec& layer, const Shape& input);
// The window rules conv2d and maxpool2d share, for readers of other formats that meet the same
// layers (the ONNX importer): whether a padding is allowed (PyTorch's: at most half the kernel,
// or windows of padding only), and the output [N, channels, H', W'] of a window over `input`
// [N, C, H, W] (set in `output` when it fits).
bool padding_fits(Pair kernel, Pair padding);
enum class WindowFit { fits, smaller_than_kernel, past_int64 };
WindowFit window_output(Pair kernel, Pair stride, Pair padding, const Shape& input, int64_t channels, Shape& output);

// Each layer's output shape for a batch of one; throws SpecError naming the first layer whose
// input does not fit.
std::vector<Shape> layer_shapes(const SequentialSpec& spec);

// The parameters a layer has, under their local names in PyTorch's layouts: weight [out, in]
// or [out, in, kh, kw], then bias [out] when the layer has one.
struct ParameterSpec {
  std::string name;  // "weight", "bias"
  Shape shape;
};
std::vector<ParameterSpec> parameters(const LayerSpec& layer);

}  // namespace ckpt::model_spec
