// What every oneDNN layer shares. Two ways in:
// - the public Tensor API (Layer::forward/backward): plain C-order f32 at both edges, for tests
//   and for callers composing layers by hand;
// - the model path (run_forward/run_backward): activations stay in whatever layout the
//   primitives chose, so a chain of convolutions pays no reorders between layers, and a layer
//   may compute in place when the model says its input is scratch.
#pragma once

#include "engine_memory.hpp"

#include <ckpt/model_spec.hpp>
#include <ckpt/train/layer.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace ckpt::train::detail {

using Args = std::unordered_map<int, memory>;

// Primitives are built for one input layout, mode and thread count; a smaller last batch gets
// its own plan and the full-size plan stays for the next epoch.
struct PlanKey {
  memory::desc src;
  bool training = false;
  int threads = 0;
};

template <class Plan>
class PlanCache {
 public:
  template <class Make>
  Plan& get(const memory::desc& src, bool training, Make&& make) {
    int threads = Engine::threads();
    if (last_ && matches(*last_, src, training, threads)) return *last_;
    for (auto& p : plans_)
      if (matches(*p, src, training, threads)) return *(last_ = p.get());
    // Bounded, so that a caller cycling through batch sizes does not grow memory forever.
    if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
    plans_.push_back(make(PlanKey{src, training, threads}));
    return *(last_ = plans_.back().get());
  }
  // The plan of the last forward, or null.
  Plan* last() const { return last_; }

 private:
  static constexpr size_t kMaxPlans = 8;
  static bool matches(const Plan& p, const memory::desc& src, bool training, int threads) {
    return p.key.training == training && p.key.threads == threads && p.key.src == src;
  }
  std::vector<std::unique_ptr<Plan>> plans_;
  Plan* last_ = nullptr;
};

class DnnlLayer : public Layer {
 public:
  // `spec` gives the layer's hyper-parameters, its description and its shape rule.
  DnnlLayer(Engine& engine, model_spec::LayerSpec spec)
      : engine_(engine), spec_(std::move(spec)), path_("model/spec/" + spec_.name) {}

  void describe(Group& spec) const final { model_spec::describe(spec_, spec); }
  Shape output_shape(const Shape& input) const final { return model_spec::output_shape(spec_, input); }

  const Tensor& forward(const Tensor& x, bool training) final;
  const Tensor& backward(const Tensor& grad_out) final;

  // `src` must stay alive and unchanged until backward. `src_writable`: the layer may overwrite
  // src (compute in place). The result may alias src.
  virtual const memory& run_forward(const memory& src, bool training, bool src_writable) = 0;
  // `diff_dst` may be in any layout; `diff_dst_writable`: the layer may overwrite it. Returns
  // d(loss)/d(src) in any layout (possibly aliasing diff_dst), or null when !need_diff_src.
  virtual const memory* run_backward(const memory& diff_dst, bool diff_dst_writable,
                                     bool need_diff_src) = 0;
  // True when backward reads this layer's forward output, which must then survive until
  // backward: the next layer may not compute in place over it.
  virtual bool backward_reads_output() const { return false; }

  const std::string& path() const { return path_; }

 protected:
  [[noreturn]] void fail(const std::string& what) const;
  // Backward reads what a training forward kept.
  void require_training_forward(bool had_one) const;
  dnnl::stream& stream() { return engine_.stream(); }
  const dnnl::engine& eng() { return engine_.engine(); }

  Engine& engine_;
  const model_spec::LayerSpec spec_;
  std::string path_;

 private:
  Tensor in_, out_, grad_in_;
  memory in_mem_, grad_mem_;
  Converter out_plain_, grad_plain_;
};

// Where an elementwise primitive writes its result: over `in` itself when the caller lets it, or
// when `in` is a converted copy (ours to overwrite) rather than `original`; otherwise into `own`,
// allocated on first use and kept with the plan.
inline memory in_place_or_own(const memory& in, const memory& original, bool original_writable,
                              Buffer& own, const memory::desc& md, const dnnl::engine& eng) {
  if (original_writable || in.get_data_handle() != original.get_data_handle()) return in;
  if (own.empty()) own = Buffer(md, eng);
  return own.mem();
}

// The storage of a parameter, for oneDNN (which takes non-const pointers even for inputs).
void* data_of(const Tensor& t);

}  // namespace ckpt::train::detail
