// A sequential model built from its spec: the architecture as data (docs/schema.md, model/spec),
// so a checkpoint alone rebuilds it.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/train/engine.hpp>
#include <ckpt/train/layer.hpp>

#include <memory>
#include <string>
#include <vector>

namespace ckpt::train {

struct LoadResult {
  std::vector<std::string> missing;         // in the model, not in the state dict
  std::vector<std::string> unexpected;      // in the state dict, not in the model
  std::vector<std::string> shape_mismatch;  // "fc1.weight: [256, 784] in the model, [10, 784] given"
  bool ok() const { return missing.empty() && unexpected.empty() && shape_mismatch.empty(); }
};

// Spec layout (model/spec):
//   @type        "sequential"
//   @input_shape int64[]   one sample's shape, without the batch dimension, e.g. [1, 28, 28]
//   @layers      string[]  layer names in order; names become parameter prefixes ("fc1.weight")
//   <name>/      one group per layer: @type and its hyper-parameters
//     linear     @in_features, @out_features, @bias (bool, default true)
//     conv2d     @in_channels, @out_channels, @kernel_size, @stride (1), @padding (0), @bias (true)
//     maxpool2d  @kernel_size, @stride (= kernel_size), @padding (0)
//     relu, flatten (start_dim 1, end_dim -1)
//     softmax    @dim (1)
//   kernel_size, stride and padding are an int64 or an int64[2] [h, w], as in PyTorch.
// Parameters follow PyTorch's names and layouts: Linear weight [out, in] and bias [out], Conv2d
// weight [out, in, kh, kw] and bias [out], so a torch nn.Module with the same attribute names
// loads the state dict as is.
class Model {
 public:
  // Parameters are initialised from `seed` as PyTorch does by default (kaiming-uniform with
  // a=sqrt(5), i.e. U(+-1/sqrt(fan_in)) for weights and biases), each layer from its own seed
  // derived from `seed` and its name. Throws UsageError naming the layer and attribute
  // ("model/spec/fc1: in_features must be a positive integer; ...") or a shape that does not
  // chain ("model/spec/fc1: expects input of shape [N, 320] ..., got [1, 500]").
  static std::unique_ptr<Model> from_spec(const Group& spec, uint64_t seed = 0);
  // Ready-made specs: "linear_regression" (one layer named "linear": in -> out), "logistic
  // regression" (the same, in -> classes; pair it with cross_entropy), "mlp" (fc1, relu1, fc2,
  // relu2, ..., fcK; input [in_features]), "convnet" (the MegEngine guide's LeNet-style net on
  // [1, 28, 28]: conv1 1->10 5x5, pool1 2, relu1, conv2 10->20 5x5, pool2 2, relu2, flatten,
  // fc1 320->50, relu3, fc2 50->10).
  static Group linear_regression_spec(int64_t in_features, int64_t out_features = 1);
  static Group logistic_regression_spec(int64_t in_features, int64_t classes);
  static Group mlp_spec(int64_t in_features, const std::vector<int64_t>& hidden, int64_t classes);
  static Group convnet_spec();

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  const Group& spec() const { return spec_; }
  const Shape& input_shape() const { return input_shape_; }
  // The shape forward returns for a batch of n.
  Shape output_shape(int64_t n) const;

  // "fc1.weight" -> parameter, in layer order.
  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  // Views of the parameters (and buffers), PyTorch names and layouts.
  Group state_dict() const;
  // Copies matching tensors in (floating dtypes are converted to f32). Strict: throws
  // UsageError listing every missing, unexpected and mismatched key and loads nothing;
  // otherwise loads what matches and reports the rest.
  LoadResult load_state_dict(const Group& state, bool strict = true);

  // x: [N, input_shape...] f32, N > 0. Returns the logits (or regression outputs)
  // [N, outputs], valid until the next forward. x must stay alive and unchanged until backward
  // (it is read again for the first layer's weight gradient); 64-byte aligned input (see
  // aligned_tensor) is read in place, other input is copied first.
  const Tensor& forward(const Tensor& x);
  // grad: d(loss)/d(output of the last forward), f32 of its shape. Fills every parameter's grad
  // (overwritten, not accumulated). The input's gradient is not computed.
  void backward(const Tensor& grad);
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  bool training() const { return training_; }

 private:
  struct Runtime;
  Model();
  Group spec_;
  Shape input_shape_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::pair<std::string, std::unique_ptr<Layer>>> layers_;
  std::unique_ptr<Runtime> rt_;
  bool training_ = true;
};

// Zero-filled f32 storage aligned to 64 bytes: what the model reads without copying (oneDNN's
// kernels may take another code path on unaligned data, so aligned buffers also keep results
// independent of where an allocation happened to land).
Tensor aligned_tensor(Shape shape);

}  // namespace ckpt::train
