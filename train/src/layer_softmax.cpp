// Softmax along one dimension (PyTorch's nn.Softmax(dim)). Works on plain layouts: it usually
// sits on [N, classes] logits, where blocking buys nothing.
#include "layer_base.hpp"
#include "layers.hpp"

namespace ckpt::train::detail {

namespace {
using dnnl::prop_kind;
using dnnl::softmax_backward;
using dnnl::softmax_forward;

class Softmax final : public DnnlLayer {
 public:
  Softmax(const LayerSpec& spec, Engine& engine) : DnnlLayer(engine, spec), dim_(spec.dim) {}
  bool backward_reads_output() const override { return true; }

  const memory& run_forward(const memory& src, bool training, bool src_writable) override {
    Plan& p = plans_.get(src.get_desc(), training, [&](const PlanKey& key) {
      auto plan = std::make_unique<Plan>();
      plan->key = key;
      Shape shape = to_shape(key.src.dims());
      plan->md = plain_desc(shape);
      softmax_forward::desc d(training ? prop_kind::forward_training : prop_kind::forward_inference,
                              plan->md, static_cast<int>(axis(shape.size())));
      plan->fwd_pd = softmax_forward::primitive_desc(d, eng());
      plan->fwd = softmax_forward(plan->fwd_pd);
      return plan;
    });
    const memory& s = p.in_conv(src, p.md, engine_);
    p.dst = in_place_or_own(s, src, src_writable, p.dst_buf, p.md, eng());
    p.fwd_args[DNNL_ARG_SRC] = s;
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
      softmax_backward::desc d(p.md, p.md, static_cast<int>(axis(p.key.src.dims().size())));
      p.bwd = softmax_backward(softmax_backward::primitive_desc(d, eng(), p.fwd_pd));
    }
    const memory& dd = p.dd_conv(diff_dst, p.md, engine_);
    p.diff_src = in_place_or_own(dd, diff_dst, diff_dst_writable, p.diff_src_buf, p.md, eng());
    p.bwd_args[DNNL_ARG_DIFF_DST] = dd;
    p.bwd_args[DNNL_ARG_DST] = p.dst;
    p.bwd_args[DNNL_ARG_DIFF_SRC] = p.diff_src;
    p.bwd.execute(stream(), p.bwd_args);
    return &p.diff_src;
  }

 private:
  struct Plan {
    PlanKey key;
    memory::desc md;
    softmax_forward::primitive_desc fwd_pd;
    dnnl::primitive fwd, bwd;
    Buffer dst_buf, diff_src_buf;
    memory dst, diff_src;
    Converter in_conv, dd_conv;
    Args fwd_args, bwd_args;
  };
  int64_t axis(size_t rank) const { return dim_ < 0 ? dim_ + static_cast<int64_t>(rank) : dim_; }

  int64_t dim_;
  PlanCache<Plan> plans_;
};
}  // namespace

std::unique_ptr<Layer> make_softmax(const LayerSpec& spec, Engine& engine) {
  return std::make_unique<Softmax>(spec, engine);
}

}  // namespace ckpt::train::detail
