// ReLU. Backward uses the output (relu_use_dst_for_bwd), which lets the forward run in place over
// an input the model no longer needs.
#include "layer_base.hpp"
#include "layers.hpp"

namespace ckpt::train::detail {

namespace {
using dnnl::algorithm;
using dnnl::eltwise_backward;
using dnnl::eltwise_forward;
using dnnl::prop_kind;

constexpr algorithm kRelu = algorithm::eltwise_relu_use_dst_for_bwd;

class ReLU final : public DnnlLayer {
 public:
  ReLU(const LayerSpec& spec, Engine& engine) : DnnlLayer(engine, spec) {}
  bool backward_reads_output() const override { return true; }

  const memory& run_forward(const memory& src, bool training, bool src_writable) override {
    Plan& p = plans_.get(src.get_desc(), training, [&](const PlanKey& key) {
      auto plan = std::make_unique<Plan>();
      plan->key = key;
      eltwise_forward::desc d(training ? prop_kind::forward_training : prop_kind::forward_inference,
                              kRelu, key.src, 0.0f);
      plan->fwd_pd = eltwise_forward::primitive_desc(d, eng());
      plan->fwd = eltwise_forward(plan->fwd_pd);
      return plan;
    });
    p.dst = in_place_or_own(src, src, src_writable, p.dst_buf, p.key.src, eng());
    p.fwd_args[DNNL_ARG_SRC] = src;
    p.fwd_args[DNNL_ARG_DST] = p.dst;
    p.fwd.execute(stream(), p.fwd_args);
    return p.dst;
  }

  const memory* run_backward(const memory& diff_dst, bool diff_dst_writable,
                             bool need_diff_src) override {
    Plan* pp = plans_.last();
    require_training_forward(pp && pp->key.training);
    if (!need_diff_src) return nullptr;
    Plan& p = *pp;
    if (!p.bwd) {
      eltwise_backward::desc d(kRelu, p.key.src, p.key.src, 0.0f);
      p.bwd = eltwise_backward(eltwise_backward::primitive_desc(d, eng(), p.fwd_pd));
    }
    const memory& dd = p.dd_conv(diff_dst, p.key.src, engine_);
    p.diff_src = in_place_or_own(dd, diff_dst, diff_dst_writable, p.diff_src_buf, p.key.src, eng());
    p.bwd_args[DNNL_ARG_DIFF_DST] = dd;
    p.bwd_args[DNNL_ARG_DST] = p.dst;
    p.bwd_args[DNNL_ARG_DIFF_SRC] = p.diff_src;
    p.bwd.execute(stream(), p.bwd_args);
    return &p.diff_src;
  }

 private:
  struct Plan {
    PlanKey key;
    eltwise_forward::primitive_desc fwd_pd;
    dnnl::primitive fwd, bwd;
    Buffer dst_buf, diff_src_buf;
    memory dst, diff_src;
    Converter dd_conv;
    Args fwd_args, bwd_args;
  };
  PlanCache<Plan> plans_;
};
}  // namespace

std::unique_ptr<Layer> make_relu(const LayerSpec& spec, Engine& engine) {
  return std::make_unique<ReLU>(spec, engine);
}

}  // namespace ckpt::train::detail
