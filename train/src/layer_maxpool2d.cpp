// MaxPool2d with PyTorch's floor rounding of the output size. Training keeps oneDNN's workspace
// (the argmax of each window), which backward scatters the gradient through.
#include "layer_base.hpp"
#include "layers.hpp"

namespace ckpt::train::detail {

namespace {
using dnnl::algorithm;
using dnnl::pooling_backward;
using dnnl::pooling_forward;
using dnnl::prop_kind;

class MaxPool2d final : public DnnlLayer {
 public:
  MaxPool2d(const LayerSpec& spec, Engine& engine)
      : DnnlLayer(engine, spec), k_(spec.kernel), s_(spec.stride), p_(spec.padding) {}

  const memory& run_forward(const memory& src, bool training, bool) override {
    Plan& p = plans_.get(src.get_desc(), training, [&](const PlanKey& key) {
      auto plan = std::make_unique<Plan>();
      plan->key = key;
      plan->fwd_pd = pooling_forward::primitive_desc(desc(key.src, training), eng());
      plan->fwd = pooling_forward(plan->fwd_pd);
      plan->dst = Buffer(plan->fwd_pd.dst_desc(), eng());
      if (training) plan->ws = Buffer(plan->fwd_pd.workspace_desc(), eng());
      return plan;
    });
    p.fwd_args[DNNL_ARG_SRC] = src;
    p.fwd_args[DNNL_ARG_DST] = p.dst.mem();
    if (training) p.fwd_args[DNNL_ARG_WORKSPACE] = p.ws.mem();
    p.fwd.execute(stream(), p.fwd_args);
    return p.dst.mem();
  }

  const memory* run_backward(const memory& diff_dst, bool, bool need_diff_src) override {
    Plan* pp = plans_.last();
    require_training_forward(pp && pp->key.training);
    if (!need_diff_src) return nullptr;
    Plan& p = *pp;
    if (!p.bwd) {
      // Gradients flow in the forward's layouts, which the pooling kernels handle directly.
      pooling_backward::desc d(algorithm::pooling_max, p.key.src, p.fwd_pd.dst_desc(), strides(),
                               kernel(), padding(), padding());
      pooling_backward::primitive_desc pd(d, eng(), p.fwd_pd);
      p.bwd = pooling_backward(pd);
      p.dd_md = pd.diff_dst_desc();
      p.diff_src = Buffer(pd.diff_src_desc(), eng());
    }
    p.bwd_args[DNNL_ARG_DIFF_DST] = p.dd_conv(diff_dst, p.dd_md, engine_);
    p.bwd_args[DNNL_ARG_WORKSPACE] = p.ws.mem();
    p.bwd_args[DNNL_ARG_DIFF_SRC] = p.diff_src.mem();
    p.bwd.execute(stream(), p.bwd_args);
    return &p.diff_src.mem();
  }

 private:
  struct Plan {
    PlanKey key;
    pooling_forward::primitive_desc fwd_pd;
    dnnl::primitive fwd, bwd;
    Buffer dst, ws, diff_src;
    memory::desc dd_md;
    Converter dd_conv;
    Args fwd_args, bwd_args;
  };

  memory::dims strides() const { return {s_.h, s_.w}; }
  memory::dims kernel() const { return {k_.h, k_.w}; }
  memory::dims padding() const { return {p_.h, p_.w}; }
  pooling_forward::desc desc(const memory::desc& src, bool training) const {
    return pooling_forward::desc(
        training ? prop_kind::forward_training : prop_kind::forward_inference,
        algorithm::pooling_max, src, any_desc(output_shape(to_shape(src.dims()))), strides(),
        kernel(), padding(), padding());
  }

  Pair k_, s_, p_;
  PlanCache<Plan> plans_;
};
}  // namespace

std::unique_ptr<Layer> make_maxpool2d(const LayerSpec& spec, Engine& engine) {
  return std::make_unique<MaxPool2d>(spec, engine);
}

}  // namespace ckpt::train::detail
