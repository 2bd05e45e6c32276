#include <ckpt/errors.hpp>
#include <ckpt/train/schedule.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
#include <numbers>

namespace ckpt::train {

namespace {

double num(const Group& g, const char* key, double fallback) {
  const Value* v = g.attribute(key);
  if (!v) return fallback;
  if (auto* d = std::get_if<double>(v)) return *d;
  if (auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  throw UsageError(std::string("schedule.") + key + ": expected a number");
}

class Constant : public Schedule {
 public:
  explicit Constant(double lr) : Schedule("constant", lr) {}
  double lr() const override { return base_lr_; }
};

class StepLR : public Schedule {
 public:
  StepLR(const Group& c, double lr) : Schedule("step", lr) {
    step_size_ = static_cast<int64_t>(num(c, "step_size", 1));
    gamma_ = num(c, "gamma", 0.1);
    if (step_size_ < 1) throw UsageError("schedule.step_size: must be at least 1");
  }
  double lr() const override { return base_lr_ * std::pow(gamma_, static_cast<double>(epoch_ / step_size_)); }

 private:
  int64_t step_size_;
  double gamma_;
};

class Cosine : public Schedule {
 public:
  Cosine(const Group& c, double lr) : Schedule("cosine", lr) {
    t_max_ = num(c, "t_max", 10);
    eta_min_ = num(c, "eta_min", 0);
    if (t_max_ <= 0) throw UsageError("schedule.t_max: must be positive");
  }
  double lr() const override {
    return eta_min_ + (base_lr_ - eta_min_) * (1 + std::cos(std::numbers::pi * static_cast<double>(epoch_) / t_max_)) / 2;
  }

 private:
  double t_max_, eta_min_;
};

}  // namespace

std::unique_ptr<Schedule> Schedule::make(const Group& c, double base_lr) {
  const Value* t = c.attribute("type");
  std::string type = t && std::holds_alternative<std::string>(*t) ? std::get<std::string>(*t) : "constant";
  for (const auto& a : c.attributes()) {
    static const std::vector<std::string> keys = {"type", "step_size", "gamma", "t_max", "eta_min"};
    if (std::find(keys.begin(), keys.end(), a.name) == keys.end())
      throw UsageError("schedule." + a.name + ": unknown key (known: type, step_size, gamma, t_max, eta_min)");
  }
  if (type == "constant") return std::make_unique<Constant>(base_lr);
  if (type == "step") return std::make_unique<StepLR>(c, base_lr);
  if (type == "cosine") return std::make_unique<Cosine>(c, base_lr);
  throw UsageError("schedule.type: unknown schedule '" + type + "' (known: constant, step, cosine)");
}

Group Schedule::state_dict() const {
  Group g;
  g.set("type", type_).set("base_lr", base_lr_).set("epoch", epoch_);
  return g;
}

void Schedule::load_state_dict(const Group& g) {
  const Value* t = g.attribute("type");
  if (!t || !value_equal(*t, Value(type_)))
    throw FormatError("trainer/schedule/type: the checkpoint holds " + (t ? value_to_string(*t) : std::string("none")) +
                      ", the run uses \"" + type_ + "\"");
  base_lr_ = num(g, "base_lr", base_lr_);
  epoch_ = static_cast<int64_t>(num(g, "epoch", 0));
}

}  // namespace ckpt::train
