// Conv2d on oneDNN's direct convolution. Weight [out, in, kh, kw] and bias [out] as in PyTorch.
// Activation layouts, measured with oneDNN 2.6 on AVX-512 (benchmarks/train/README.md):
// - few input channels (an image): the primitive's choice, plain NCHW in and 16-channel
//   blocks out, about twice as fast as channels-last for the forward and weight gradient;
// - otherwise channels-last (NHWC) in and out: with a channel count that is not a multiple
//   of 16 the primitive's choice falls back to an AVX2 weight gradient in 8-channel blocks
//   (with reorders around it), 1.5x slower in total; at multiples of 16 the two tie.
// Pooling and ReLU keep whichever layout they get.
#include "layer_weighted.hpp"
#include "layers.hpp"

#include <cstdlib>
#include <cstring>

namespace ckpt::train::detail {

namespace {
using dnnl::algorithm;
using dnnl::convolution_backward_data;
using dnnl::convolution_backward_weights;
using dnnl::convolution_forward;
using dnnl::prop_kind;

class Conv2d final : public WeightedLayer {
 public:
  Conv2d(const LayerSpec& spec, Engine& engine)
      : WeightedLayer(engine, spec, blocked_weights("CKPT_TRAIN_CONV_WEIGHTS", true)),
        s_(spec.stride), p_(spec.padding), channels_last_(channels_last(spec.in)) {}

 protected:
  memory::desc layout(const Shape& shape) const {
    if (!channels_last_) return any_desc(shape);
    return memory::desc(to_dims(shape), memory::data_type::f32, memory::format_tag::nhwc);
  }
  memory::desc out_md(const memory::desc& src) const {
    return layout(output_shape(to_shape(src.dims())));
  }
  memory::desc in_md(const memory::desc& src) const { return layout(to_shape(src.dims())); }
  memory::dims strides() const { return {s_.h, s_.w}; }
  memory::dims padding() const { return {p_.h, p_.w}; }

  convolution_forward::primitive_desc fwd(const memory::desc& src, bool training) {
    convolution_forward::desc d(training ? prop_kind::forward_training : prop_kind::forward_inference,
                                algorithm::convolution_direct, in_md(src), weights_md(),
                                bias_md(), out_md(src), strides(), padding(), padding());
    return {d, eng()};
  }
  dnnl::primitive_desc forward_pd(const memory::desc& src, bool training) override {
    return fwd(src, training);
  }
  dnnl::primitive_desc backward_data_pd(const memory::desc& src) override {
    convolution_backward_data::desc d(algorithm::convolution_direct, in_md(src), weights_md(),
                                      out_md(src), strides(), padding(), padding());
    return convolution_backward_data::primitive_desc(d, eng(), fwd(src, true));
  }
  dnnl::primitive_desc backward_weights_pd(const memory::desc& src) override {
    convolution_backward_weights::desc d(algorithm::convolution_direct, in_md(src), weights_md(),
                                         bias_md(), out_md(src), strides(), padding(), padding());
    return convolution_backward_weights::primitive_desc(d, eng(), fwd(src, true));
  }

 private:
  static bool channels_last(int64_t in_channels) {
    const char* e = std::getenv("CKPT_TRAIN_CONV_LAYOUT");  // "any" or "nhwc", for benchmarks
    if (e && std::strcmp(e, "any") == 0) return false;
    if (e && std::strcmp(e, "nhwc") == 0) return true;
    return in_channels > 4;
  }

  Pair s_, p_;
  bool channels_last_;
};
}  // namespace

std::unique_ptr<Layer> make_conv2d(const LayerSpec& spec, Engine& engine) {
  return std::make_unique<Conv2d>(spec, engine);
}

}  // namespace ckpt::train::detail
