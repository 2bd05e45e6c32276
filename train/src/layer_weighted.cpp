#include "layer_weighted.hpp"

#include "init.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace ckpt::train::detail {

bool blocked_weights(const char* env, bool measured_default) {
  const char* e = std::getenv(env);
  if (e && std::strcmp(e, "plain") == 0) return false;
  if (e && std::strcmp(e, "any") == 0) return true;
  return measured_default;
}

struct WeightedLayer::Plan {
  PlanKey key;
  // forward
  dnnl::primitive fwd;
  memory::desc src_md, w_md;
  Converter src_conv, w_conv;
  Buffer dst;
  memory src;       // what the forward read, in src_md, for the weights gradient
  memory w;         // the weights the forward used, in w_md
  memory w_user, b_user;
  Args fwd_args;
  // weights gradient
  dnnl::primitive bwd_w;
  memory::desc bw_src_md, bw_dd_md;
  Converter bw_src_conv, bw_dd_conv, dw_conv;
  Buffer dw;        // when the primitive's diff-weights layout is not plain
  memory dw_user, db_user;
  Args bw_args;
  // data gradient
  dnnl::primitive bwd_d;
  memory::desc bd_w_md, bd_dd_md;
  Converter bd_w_conv, bd_dd_conv;
  Buffer diff_src;
  Args bd_args;
};

WeightedLayer::WeightedLayer(Engine& engine, model_spec::LayerSpec spec, bool blocked)
    : DnnlLayer(engine, std::move(spec)), weight_shape_(model_spec::parameters(spec_).front().shape),
      has_bias_(spec_.bias), fan_in_(1), blocked_(blocked) {
  // Every weight element after the output dimension feeds one output: in, or in * kh * kw.
  for (size_t i = 1; i < weight_shape_.size(); ++i) fan_in_ *= weight_shape_[i];
  weight_ = {"weight", aligned_tensor(weight_shape_), aligned_tensor(weight_shape_)};
  if (has_bias_) {
    Shape b{weight_shape_[0]};
    bias_ = {"bias", aligned_tensor(b), aligned_tensor(b)};
  }
}

WeightedLayer::~WeightedLayer() = default;

std::vector<Parameter*> WeightedLayer::parameters() {
  if (has_bias_) return {&weight_, &bias_};
  return {&weight_};
}

void WeightedLayer::reset_parameters(uint64_t seed) {
  std::mt19937_64 rng(seed);
  float bound = 1.0f / std::sqrt(static_cast<float>(fan_in_));
  uniform_fill(weight_.value.mutable_data<float>(), bound, rng);
  if (has_bias_) uniform_fill(bias_.value.mutable_data<float>(), bound, rng);
}

memory::desc WeightedLayer::weights_md() const {
  return blocked_ ? any_desc(weight_shape_) : plain_desc(weight_shape_);
}

memory::desc WeightedLayer::bias_md() const {
  return has_bias_ ? plain_desc({weight_shape_[0]}) : memory::desc();
}

void WeightedLayer::check_parameters() const {
  // The optimizer or a loader may have replaced a tensor; the primitives need the same shape.
  auto check = [&](const Parameter& p, const Shape& s) {
    if (p.value.dtype() != DType::f32 || p.value.shape() != s || p.grad.dtype() != DType::f32 ||
        p.grad.shape() != s)
      fail(p.name + " and its grad must be f32 " + shape_string(s) + ", got " +
           std::string(name(p.value.dtype())) + " " + shape_string(p.value.shape()) + " and " +
           std::string(name(p.grad.dtype())) + " " + shape_string(p.grad.shape()));
  };
  check(weight_, weight_shape_);
  if (has_bias_) check(bias_, {weight_shape_[0]});
}

const memory& WeightedLayer::run_forward(const memory& src, bool training, bool) {
  check_parameters();
  Plan& p = plans_.get(src.get_desc(), training, [&](const PlanKey& key) {
    auto plan = std::make_unique<Plan>();
    plan->key = key;
    dnnl::primitive_desc pd = forward_pd(key.src, training);
    plan->fwd = dnnl::primitive(pd);
    plan->src_md = pd.src_desc();
    plan->w_md = pd.weights_desc();
    plan->dst = Buffer(pd.dst_desc(), eng());
    plan->w_user = view(plain_desc(weight_shape_), engine_, nullptr);
    if (has_bias_) plan->b_user = view(bias_md(), engine_, nullptr);
    return plan;
  });
  p.w_user.set_data_handle(data_of(weight_.value));
  if (has_bias_) p.b_user.set_data_handle(data_of(bias_.value));
  p.src = p.src_conv(src, p.src_md, engine_);
  p.w = p.w_conv(p.w_user, p.w_md, engine_);
  p.fwd_args[DNNL_ARG_SRC] = p.src;
  p.fwd_args[DNNL_ARG_WEIGHTS] = p.w;
  if (has_bias_) p.fwd_args[DNNL_ARG_BIAS] = p.b_user;
  p.fwd_args[DNNL_ARG_DST] = p.dst.mem();
  p.fwd.execute(stream(), p.fwd_args);
  return p.dst.mem();
}

const memory* WeightedLayer::run_backward(const memory& diff_dst, bool, bool need_diff_src) {
  Plan* pp = plans_.last();
  require_training_forward(pp && pp->key.training);
  Plan& p = *pp;
  check_parameters();

  if (!p.bwd_w) {
    dnnl::primitive_desc pd = backward_weights_pd(p.key.src);
    p.bwd_w = dnnl::primitive(pd);
    p.bw_src_md = pd.src_desc();
    p.bw_dd_md = pd.diff_dst_desc();
    memory::desc dw_md = pd.diff_weights_desc();
    p.dw_user = view(plain_desc(weight_shape_), engine_, nullptr);
    if (!(dw_md == plain_desc(weight_shape_))) p.dw = Buffer(dw_md, eng());
    if (has_bias_) p.db_user = view(bias_md(), engine_, nullptr);
  }
  p.dw_user.set_data_handle(data_of(weight_.grad));
  if (has_bias_) p.db_user.set_data_handle(data_of(bias_.grad));
  p.bw_args[DNNL_ARG_SRC] = p.bw_src_conv(p.src, p.bw_src_md, engine_);
  p.bw_args[DNNL_ARG_DIFF_DST] = p.bw_dd_conv(diff_dst, p.bw_dd_md, engine_);
  p.bw_args[DNNL_ARG_DIFF_WEIGHTS] = p.dw.empty() ? p.dw_user : p.dw.mem();
  if (has_bias_) p.bw_args[DNNL_ARG_DIFF_BIAS] = p.db_user;
  p.bwd_w.execute(stream(), p.bw_args);
  if (!p.dw.empty()) p.dw_conv.into(p.dw.mem(), p.dw_user, engine_);
  if (!need_diff_src) return nullptr;

  if (!p.bwd_d) {
    dnnl::primitive_desc pd = backward_data_pd(p.key.src);
    p.bwd_d = dnnl::primitive(pd);
    p.bd_w_md = pd.weights_desc();
    p.bd_dd_md = pd.diff_dst_desc();
    p.diff_src = Buffer(pd.diff_src_desc(), eng());
  }
  // The weights are unchanged since the forward, so its reordered copy serves when the layouts
  // agree.
  p.bd_args[DNNL_ARG_WEIGHTS] = p.bd_w_md == p.w_md ? p.w : p.bd_w_conv(p.w_user, p.bd_w_md, engine_);
  p.bd_args[DNNL_ARG_DIFF_DST] = p.bd_dd_conv(diff_dst, p.bd_dd_md, engine_);
  p.bd_args[DNNL_ARG_DIFF_SRC] = p.diff_src.mem();
  p.bwd_d.execute(stream(), p.bd_args);
  return &p.diff_src.mem();
}

}  // namespace ckpt::train::detail
