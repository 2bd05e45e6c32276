// Learning-rate schedules stepped once per epoch, as PyTorch's StepLR and CosineAnnealingLR
// (closed form), with their state in the checkpoint's trainer/schedule group.
#pragma once

#include <ckpt/document.hpp>

#include <memory>

namespace ckpt::train {

class Schedule {
 public:
  // config: @type "constant" | "step" (step_size, gamma) | "cosine" (t_max, eta_min).
  static std::unique_ptr<Schedule> make(const Group& config, double base_lr);
  virtual ~Schedule() = default;
  virtual double lr() const = 0;  // the learning rate for the current epoch
  void step() { ++epoch_; }
  int64_t epoch() const { return epoch_; }
  Group state_dict() const;
  void load_state_dict(const Group& g);

 protected:
  Schedule(std::string type, double base_lr) : type_(std::move(type)), base_lr_(base_lr) {}
  std::string type_;
  double base_lr_;
  int64_t epoch_ = 0;
};

}  // namespace ckpt::train
