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
  // state's type differs or a buffer's shape does not match its parameter. Sharded, a buffer
  // must have the parameter's whole shape and gives this rank's rows; only with `own_rows` (the
  // caller read this rank's rows alone from a sharded checkpoint) must it have state_shape()
  // instead. Which one is the caller's to say: a whole tensor that happens to have the rows'
  // shape is not this rank's rows.
  virtual void load_state_dict(const Group& state, const NamedParameters& params, bool own_rows = false) = 0;

  double lr() const { return lr_; }
  int64_t steps() const { return step_; }

  // ZeRO stage 1 (docs/scaling.md): from here on this optimizer keeps state for, and updates,
  // only rank `rank`'s rows of every parameter (rows_of along dim 0); its state_dict() then holds
  // those rows only, shaped [rows, ...]. Set before any step or load. (0, 1): all rows.
  void shard(int rank, int world);
  bool sharded() const { return world_ > 1; }
  // Rank `rank`'s contiguous range [first, second) of `rows` rows split over `world` ranks:
  // sizes differ by at most one, the larger ones first; some are empty when rows < world.
  static std::pair<int64_t, int64_t> rows_of(int64_t rows, int rank, int world);
  // A parameter's rows along dim 0 (a 0-d tensor is one row).
  static int64_t rows(const Shape& shape) { return shape.empty() ? 1 : shape[0]; }
  // Rank `rank`'s rows of a parameter of `shape` as the element range [first, second) in C order.
  static std::pair<size_t, size_t> elements_of(const Shape& shape, int rank, int world);
  // This optimizer's rows of a parameter of `shape`, and its state tensors' shape for it.
  std::pair<int64_t, int64_t> my_rows(const Shape& shape) const { return rows_of(rows(shape), rank_, world_); }
  Shape state_shape(const Shape& shape) const;

 protected:
  double lr_ = 0.01;
  double weight_decay_ = 0;
  int64_t step_ = 0;
  // Per parameter name, per buffer name ("momentum_buffer", "exp_avg", ...).
  std::map<std::string, std::map<std::string, Tensor>> state_;
  int rank_ = 0, world_ = 1;
  // The element range [first, second) of a parameter of `shape` this optimizer updates.
  std::pair<size_t, size_t> my_elements(const Shape& shape) const { return elements_of(shape, rank_, world_); }
  Group state_group() const;
  void load_state_group(const Group& g, const NamedParameters& params, const std::vector<std::string>& buffers,
                        bool own_rows);
};

}  // namespace ckpt::train
