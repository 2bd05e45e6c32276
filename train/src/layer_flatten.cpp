// Flatten [N, d1, d2, ...] -> [N, d1*d2*...] (PyTorch's nn.Flatten defaults). Plain input is
// only relabelled; a blocked one is reordered to C order first, so the features come in
// PyTorch's order and the next Linear's weights mean what they mean there.
#include "layer_base.hpp"
#include "layers.hpp"

namespace ckpt::train::detail {

namespace {

class Flatten final : public DnnlLayer {
 public:
  Flatten(const LayerSpec& spec, Engine& engine) : DnnlLayer(engine, spec) {}

  const memory& run_forward(const memory& src, bool training, bool) override {
    Plan& p = plans_.get(src.get_desc(), training, [&](const PlanKey& key) {
      auto plan = std::make_unique<Plan>();
      plan->key = key;
      Shape in = to_shape(key.src.dims());
      plan->in_md = plain_desc(in);
      plan->out_md = plain_desc(output_shape(in));
      plan->out = view(plan->out_md, engine_, nullptr);
      plan->diff_src = view(plan->in_md, engine_, nullptr);
      return plan;
    });
    p.out.set_data_handle(p.in_conv(src, p.in_md, engine_).get_data_handle());
    return p.out;
  }

  const memory* run_backward(const memory& diff_dst, bool, bool need_diff_src) override {
    Plan* pp = plans_.last();
    require_training_forward(pp && pp->key.training);
    if (!need_diff_src) return nullptr;
    pp->diff_src.set_data_handle(pp->dd_conv(diff_dst, pp->out_md, engine_).get_data_handle());
    return &pp->diff_src;
  }

 private:
  struct Plan {
    PlanKey key;
    memory::desc in_md, out_md;
    memory out, diff_src;  // views over the plain input / incoming gradient
    Converter in_conv, dd_conv;
  };
  PlanCache<Plan> plans_;
};
}  // namespace

std::unique_ptr<Layer> make_flatten(const LayerSpec& spec, Engine& engine) {
  return std::make_unique<Flatten>(spec, engine);
}

}  // namespace ckpt::train::detail
