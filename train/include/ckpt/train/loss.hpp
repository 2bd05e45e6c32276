#pragma once

#include <ckpt/tensor.hpp>

#include <cstdint>
#include <span>

namespace ckpt::train {

struct LossResult {
  double loss = 0;      // mean over the batch (cross-entropy) or over every element (MSE)
  int64_t correct = 0;  // rows whose argmax (first maximum) is the label; 0 for MSE
};

// Output tensors (grad, probs) are owned by the caller and reused when they already are f32 of
// the right shape; otherwise they are replaced by new 64-byte aligned tensors, which the model
// reads in place.

// Mean cross-entropy of logits [N, C] against class labels (each < C, else UsageError), computed
// with a log-softmax shifted by each row's maximum; writes d(loss)/d(logits) =
// (softmax - onehot) / N into grad.
LossResult cross_entropy(const Tensor& logits, std::span<const uint8_t> labels, Tensor& grad);
// Mean squared error over every element; grad = 2 (y - t) / numel.
LossResult mse(const Tensor& outputs, const Tensor& targets, Tensor& grad);
// Row-wise softmax of [N, C] (for reporting probabilities and exporting).
void softmax(const Tensor& logits, Tensor& probs);

}  // namespace ckpt::train
