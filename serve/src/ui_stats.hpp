// Statistics of one tensor for the web page: computed by the server from the tensor's bytes,
// read once, in two passes over them (the range first, so the histogram's bins are known).
#pragma once

#include <ckpt/dtype.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ckpt::serve::ui {

inline constexpr int kDefaultBins = 64;
inline constexpr int kMaxBins = 1024;

struct TensorStats {
  uint64_t count = 0;    // values (a complex element counts as its two components)
  uint64_t finite = 0;   // values that are neither NaN nor infinite
  uint64_t zeros = 0;    // values equal to zero (-0.0 included), as numpy's x == 0
  uint64_t nan = 0, pos_inf = 0, neg_inf = 0;
  // Over the finite values; absent (has_range false) when there are none.
  bool has_range = false;
  double min = 0, max = 0, mean = 0, std = 0;  // std: population (numpy's ddof=0)
  // numpy.histogram(finite values, bins, range=(min, max)): edges.size() == counts.size() + 1,
  // every bin half-open but the last; a constant tensor gets numpy's (min-0.5, max+0.5).
  std::vector<double> edges;
  std::vector<uint64_t> counts;
};

// `bytes` holds `numel` elements of `dtype` (whole blocks for a block dtype). Complex tensors
// are described by their real and imaginary components, as ckpt diff compares them.
TensorStats tensor_stats(DType dtype, std::span<const std::byte> bytes, uint64_t numel, int bins);

// The largest magnitude among the values that are not NaN (infinity when one is infinite);
// 0 for an empty tensor. The scale a diff's relative change is measured against.
double max_abs_value(DType dtype, std::span<const std::byte> bytes, uint64_t numel);

}  // namespace ckpt::serve::ui
