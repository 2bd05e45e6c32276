// Optimizers with PyTorch's update rules and a state dict that maps onto the checkpoint
// schema's `optimizer` group: @type, hyper-parameters, @step, and state/<param>/<buffer>.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/train/layer.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::train {

using NamedParameters = std::vector<std::pair<std::string, Parameter*>>;

class Optimizer {
 public:
  // config: @type "sgd" | "adam" | "adamw" and its hyper-parameters (lr, momentum, dampening,
  // nesterov, weight_decay; betas, eps). Throws UsageError naming a bad or unknown key.
  static std::unique_ptr<Optimizer> make(const Group& config);
  virtual ~Optimizer() = default;

  // One update of every parameter from its grad, at learning rate `lr`.
  virtual void step(const NamedParameters& params, double lr) = 0;
  virtual Group state_dict() const = 0;
  // Restores hyper-parameters, step and per-parameter state; throws FormatError when the
  // state's type differs or a buffer's shape does not match its parameter.
  virtual void load_state_dict(const Group& state, const NamedParameters& params) = 0;

  double lr() const { return lr_; }
  int64_t steps() const { return step_; }

 protected:
  double lr_ = 0.01;
  double weight_decay_ = 0;
  int64_t step_ = 0;
  // Per parameter name, per buffer name ("momentum_buffer", "exp_avg", ...).
  std::map<std::string, std::map<std::string, Tensor>> state_;
  Group state_group() const;
  void load_state_group(const Group& g, const NamedParameters& params, const std::vector<std::string>& buffers);
};

}  // namespace ckpt::train
