// Linear and Conv2d: a forward, a data-gradient and a weights-gradient primitive around a weight
// and an optional bias. The parameters stay plain (PyTorch layouts) for the optimizer and the
// state dict; when a primitive prefers a blocked weight layout, the weights are reordered once per
// step and the weight gradient reordered back.
#pragma once

#include "layer_base.hpp"

namespace ckpt::train::detail {

class WeightedLayer : public DnnlLayer {
 public:
  // The weight and bias are those model_spec::parameters gives `spec`; `blocked`: let the
  // primitives choose the weights' layout (see blocked_weights).
  WeightedLayer(Engine& engine, model_spec::LayerSpec spec, bool blocked);
  ~WeightedLayer() override;
  std::vector<Parameter*> parameters() override;
  void reset_parameters(uint64_t seed) override;
  const memory& run_forward(const memory& src, bool training, bool src_writable) override;
  const memory* run_backward(const memory& diff_dst, bool diff_dst_writable,
                             bool need_diff_src) override;

 protected:
  // The primitive descriptors for an input described by `src` (batch included); they take the
  // weights as weights_md() and the bias as bias_md() (a zero descriptor when there is none).
  virtual dnnl::primitive_desc forward_pd(const memory::desc& src, bool training) = 0;
  virtual dnnl::primitive_desc backward_data_pd(const memory::desc& src) = 0;
  virtual dnnl::primitive_desc backward_weights_pd(const memory::desc& src) = 0;
  memory::desc weights_md() const;  // what the primitives are asked to use for weights
  memory::desc bias_md() const;
  bool has_bias() const { return has_bias_; }

 private:
  struct Plan;
  void check_parameters() const;
  Shape weight_shape_;
  bool has_bias_;
  int64_t fan_in_;
  bool blocked_;
  Parameter weight_, bias_;
  PlanCache<Plan> plans_;
};

// Whether weights may take a blocked layout (format_tag::any) rather than stay plain: the
// environment variable `env` set to "plain" or "any" overrides the measured default, so that
// benchmarks can compare the two.
bool blocked_weights(const char* env, bool measured_default);

}  // namespace ckpt::train::detail
