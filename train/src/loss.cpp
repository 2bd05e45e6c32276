#include <ckpt/errors.hpp>
#include <ckpt/train/loss.hpp>
#include <ckpt/train/model.hpp>

#include <cmath>
#include <string>

namespace ckpt::train {

namespace {
void require_f32(const Tensor& t, const char* what, size_t rank) {
  if (t.dtype() != DType::f32 || (rank && t.rank() != rank))
    throw UsageError(std::string(what) + " must be f32" +
                     (rank ? " of rank " + std::to_string(rank) : std::string()) + ", got " +
                     std::string(name(t.dtype())) + " " + shape_string(t.shape()));
}

// Aligned, so that the model reads it in place.
void prepare(Tensor& grad, const Shape& shape) {
  if (!grad.defined() || grad.dtype() != DType::f32 || grad.shape() != shape)
    grad = aligned_tensor(shape);
}
}  // namespace

LossResult cross_entropy(const Tensor& logits, std::span<const uint8_t> labels, Tensor& grad) {
  require_f32(logits, "cross_entropy logits", 2);
  const int64_t n = logits.shape()[0], c = logits.shape()[1];
  if (n <= 0 || c <= 0) throw UsageError("cross_entropy logits " + shape_string(logits.shape()) + " are empty");
  if (labels.size() != static_cast<size_t>(n))
    throw UsageError("cross_entropy: " + std::to_string(labels.size()) + " labels for " +
                     std::to_string(n) + " rows of logits");
  prepare(grad, logits.shape());
  const float* x = logits.data<float>().data();
  float* g = grad.mutable_data<float>().data();
  const float inv_n = 1.0f / static_cast<float>(n);
  LossResult r;
  for (int64_t i = 0; i < n; ++i, x += c, g += c) {
    if (labels[i] >= c)
      throw UsageError("cross_entropy: label " + std::to_string(labels[i]) + " of row " +
                       std::to_string(i) + " is not below the " + std::to_string(c) + " classes");
    int64_t arg = 0;
    for (int64_t j = 1; j < c; ++j)
      if (x[j] > x[arg]) arg = j;
    const float m = x[arg];
    // Shifted by the max so that exp never overflows; the sum in double keeps the log exact
    // enough for many classes.
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += g[j] = std::exp(x[j] - m);
    r.loss += std::log(s) - static_cast<double>(x[labels[i]] - m);
    const float inv_s = static_cast<float>(1.0 / s);
    for (int64_t j = 0; j < c; ++j) g[j] *= inv_s * inv_n;
    g[labels[i]] -= inv_n;
    r.correct += arg == labels[i];
  }
  r.loss /= static_cast<double>(n);
  return r;
}

LossResult mse(const Tensor& outputs, const Tensor& targets, Tensor& grad) {
  require_f32(outputs, "mse outputs", 0);
  require_f32(targets, "mse targets", 0);
  if (outputs.shape() != targets.shape())
    throw UsageError("mse: outputs " + shape_string(outputs.shape()) + " and targets " +
                     shape_string(targets.shape()) + " differ in shape");
  prepare(grad, outputs.shape());
  auto y = outputs.data<float>();
  auto t = targets.data<float>();
  auto g = grad.mutable_data<float>();
  LossResult r;
  if (y.empty()) return r;
  const float scale = 2.0f / static_cast<float>(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    float d = y[i] - t[i];
    r.loss += static_cast<double>(d) * d;
    g[i] = scale * d;
  }
  r.loss /= static_cast<double>(y.size());
  return r;
}

void softmax(const Tensor& logits, Tensor& probs) {
  require_f32(logits, "softmax logits", 2);
  prepare(probs, logits.shape());
  const int64_t n = logits.shape()[0], c = logits.shape()[1];
  const float* x = logits.data<float>().data();
  float* p = probs.mutable_data<float>().data();
  for (int64_t i = 0; i < n; ++i, x += c, p += c) {
    float m = x[0];
    for (int64_t j = 1; j < c; ++j) m = std::max(m, x[j]);
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += p[j] = std::exp(x[j] - m);
    const float inv_s = static_cast<float>(1.0 / s);
    for (int64_t j = 0; j < c; ++j) p[j] *= inv_s;
  }
}

}  // namespace ckpt::train
