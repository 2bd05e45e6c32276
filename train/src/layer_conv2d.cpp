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
  Conv2d(const LayerAttrs& a, int64_t in, int64_t out, Pair k, Pair s, Pair pad, bool bias,
         Engine& engine)
      : WeightedLayer(engine, a.path(), {out, in, k.h, k.w}, bias, in * k.h * k.w,
                      blocked_weights("CKPT_TRAIN_CONV_WEIGHTS", true)),
        in_(in), out_(out), k_(k), s_(s), p_(pad), channels_last_(channels_last(in)) {}

  void describe(Group& spec) const override {
    spec.set("type", "conv2d");
    spec.set("in_channels", in_);
    spec.set("out_channels", out_);
    write_pair(spec, "kernel_size", k_);
    write_pair(spec, "stride", s_);
    write_pair(spec, "padding", p_);
    spec.set("bias", has_bias());
  }

  Shape output_shape(const Shape& input) const override {
    check_input(input, {in_, -1, -1});
    int64_t oh = (input[2] + 2 * p_.h - k_.h) / s_.h + 1;
    int64_t ow = (input[3] + 2 * p_.w - k_.w) / s_.w + 1;
    if (input[2] + 2 * p_.h < k_.h || input[3] + 2 * p_.w < k_.w)
      fail("input " + shape_string(input) + " is smaller than the kernel");
    return {input[0], out_, oh, ow};
  }

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

  int64_t in_, out_;
  Pair k_, s_, p_;
  bool channels_last_;
};
}  // namespace

std::unique_ptr<Layer> make_conv2d(const LayerAttrs& a, Engine& engine) {
  int64_t in = a.positive("in_channels");
  int64_t out = a.positive("out_channels");
  Pair k = a.pair("kernel_size", std::nullopt, 1);
  Pair s = a.pair("stride", Pair{1, 1}, 1);
  Pair p = a.pair("padding", Pair{0, 0}, 0);
  return std::make_unique<Conv2d>(a, in, out, k, s, p, a.flag("bias", true), engine);
}

}  // namespace ckpt::train::detail
