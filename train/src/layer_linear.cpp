// Linear: y = x W^T + b with W [out, in] as in PyTorch, on oneDNN's inner product.
#include "layer_weighted.hpp"
#include "layers.hpp"

namespace ckpt::train::detail {

namespace {
using dnnl::inner_product_backward_data;
using dnnl::inner_product_backward_weights;
using dnnl::inner_product_forward;
using dnnl::prop_kind;

class Linear final : public WeightedLayer {
 public:
  Linear(const LayerSpec& spec, Engine& engine)
      : WeightedLayer(engine, spec, blocked_weights("CKPT_TRAIN_LINEAR_WEIGHTS", false)),
        out_(spec.out) {}

 protected:
  inner_product_forward::primitive_desc fwd(const memory::desc& src, bool training) {
    memory::dim n = src.dims()[0];
    inner_product_forward::desc d(training ? prop_kind::forward_training : prop_kind::forward_inference,
                                  src, weights_md(), bias_md(), any_desc({n, out_}));
    return {d, eng()};
  }
  dnnl::primitive_desc forward_pd(const memory::desc& src, bool training) override {
    return fwd(src, training);
  }
  dnnl::primitive_desc backward_data_pd(const memory::desc& src) override {
    memory::dim n = src.dims()[0];
    inner_product_backward_data::desc d(src, weights_md(), any_desc({n, out_}));
    return inner_product_backward_data::primitive_desc(d, eng(), fwd(src, true));
  }
  dnnl::primitive_desc backward_weights_pd(const memory::desc& src) override {
    memory::dim n = src.dims()[0];
    inner_product_backward_weights::desc d(src, weights_md(), bias_md(), any_desc({n, out_}));
    return inner_product_backward_weights::primitive_desc(d, eng(), fwd(src, true));
  }

 private:
  int64_t out_;
};
}  // namespace

std::unique_ptr<Layer> make_linear(const LayerSpec& spec, Engine& engine) {
  return std::make_unique<Linear>(spec, engine);
}

}  // namespace ckpt::train::detail
