// A layer of a sequential model, computed with oneDNN primitives that are created once per
// input shape and reused. Tensors are f32 in C order (NCHW for images) at the layer's edges.
#pragma once

#include <ckpt/document.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::train {

class Engine;  // oneDNN engine and stream, shared by every layer of a model

// A trainable tensor and its gradient (same shape, f32, 64-byte aligned, owned). Layers read
// the tensors' storage afresh on every call, so an optimizer may update `value` in place or
// replace it with another f32 tensor of the same shape.
struct Parameter {
  std::string name;  // local name: "weight", "bias"
  Tensor value;
  Tensor grad;
};

class Layer {
 public:
  virtual ~Layer() = default;
  // The spec attributes that rebuild this layer: type plus hyper-parameters.
  virtual void describe(Group& spec) const = 0;
  virtual std::vector<Parameter*> parameters() { return {}; }
  // Throws UsageError naming the layer when `input` (batch included) does not fit it.
  virtual Shape output_shape(const Shape& input) const = 0;
  // Returns the output, owned by the layer until the next forward. `training` keeps what
  // backward needs (pooling indices, inputs); x must stay alive and unchanged until backward.
  virtual const Tensor& forward(const Tensor& x, bool training) = 0;
  // Given d(loss)/d(output) of the last forward, sets every parameter's grad (overwrites, no
  // accumulation) and returns d(loss)/d(input), owned by the layer.
  virtual const Tensor& backward(const Tensor& grad_out) = 0;
  // Deterministic initialisation from `seed` (PyTorch's defaults: kaiming-uniform weights with
  // a=sqrt(5), uniform biases in +-1/sqrt(fan_in)).
  virtual void reset_parameters(uint64_t seed) { (void)seed; }
};

// Builds one layer from its spec group (attribute "type" and hyper-parameters, see model.hpp).
// Throws UsageError naming the layer ("model/spec/<name>") and the bad attribute.
std::unique_ptr<Layer> make_layer(const Group& spec, const std::string& name, Engine& engine);

}  // namespace ckpt::train
