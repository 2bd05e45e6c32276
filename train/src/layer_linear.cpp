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
  Linear(const LayerAttrs& a, int64_t in, int64_t out, bool bias, Engine& engine)
      : WeightedLayer(engine, a.path(), {out, in}, bias, in,
                      blocked_weights("CKPT_TRAIN_LINEAR_WEIGHTS", false)),
        in_(in), out_(out) {}

  void describe(Group& spec) const override {
    spec.set("type", "linear");
    spec.set("in_features", in_);
    spec.set("out_features", out_);
    spec.set("bias", has_bias());
  }

  Shape output_shape(const Shape& input) const override {
    check_input(input, {in_});
    return {input[0], out_};
  }

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
  int64_t in_, out_;
};
}  // namespace

std::unique_ptr<Layer> make_linear(const LayerAttrs& a, Engine& engine) {
  int64_t in = a.positive("in_features");
  int64_t out = a.positive("out_features");
  return std::make_unique<Linear>(a, in, out, a.flag("bias", true), engine);
}

}  // namespace ckpt::train::detail
