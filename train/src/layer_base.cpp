#include "layer_base.hpp"

#include <ckpt/errors.hpp>

namespace ckpt::train::detail {

void* data_of(const Tensor& t) { return const_cast<std::byte*>(t.bytes().data()); }

void DnnlLayer::fail(const std::string& what) const { throw UsageError(path_ + ": " + what); }

void DnnlLayer::require_training_forward(bool had_one) const {
  if (!had_one) fail("backward needs a forward in training mode first");
}

const Tensor& DnnlLayer::forward(const Tensor& x, bool training) {
  if (x.dtype() != DType::f32)
    fail("input must be f32, got " + std::string(name(x.dtype())));
  Shape out_shape = output_shape(x.shape());
  in_ = x;  // keeps the caller's bytes alive for backward
  in_mem_ = view(plain_desc(x.shape()), engine_, x.bytes().data());
  const memory& y = run_forward(in_mem_, training, false);
  const memory& plain = out_plain_(y, plain_desc(out_shape), engine_);
  stream().wait();
  out_ = Tensor::borrow(DType::f32, out_shape, plain.get_data_handle());
  return out_;
}

const Tensor& DnnlLayer::backward(const Tensor& grad_out) {
  if (!in_.defined()) require_training_forward(false);
  if (grad_out.dtype() != DType::f32 || grad_out.shape() != out_.shape())
    fail("gradient must be f32 of the output's shape " + shape_string(out_.shape()) + ", got " +
         std::string(name(grad_out.dtype())) + " " + shape_string(grad_out.shape()));
  grad_mem_ = view(plain_desc(grad_out.shape()), engine_, grad_out.bytes().data());
  const memory* dx = run_backward(grad_mem_, false, true);
  const memory& plain = grad_plain_(*dx, plain_desc(in_.shape()), engine_);
  stream().wait();
  grad_in_ = Tensor::borrow(DType::f32, in_.shape(), plain.get_data_handle());
  return grad_in_;
}

}  // namespace ckpt::train::detail
