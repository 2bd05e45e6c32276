#include "ui_stats.hpp"

#include <ckpt/errors.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace ckpt::serve::ui {

namespace {

// Calls f(values) on runs of the tensor's values as doubles. Decoding a run at a time through
// core's casts keeps one conversion for every dtype (block dtypes as ggml decodes them), and
// the run of 4096 is a whole number of blocks of every block dtype.
template <class F>
void for_each_run(DType dtype, std::span<const std::byte> bytes, uint64_t n, F&& f) {
  constexpr uint64_t kRun = 4096;
  std::vector<double> run(kRun);
  for (uint64_t start = 0; start < n; start += kRun) {
    const uint64_t len = std::min(kRun, n - start);
    cast_elements(dtype, bytes.data() + storage_bytes(dtype, start), DType::f64,
                  reinterpret_cast<std::byte*>(run.data()), static_cast<size_t>(len));
    f(std::span<const double>(run.data(), static_cast<size_t>(len)));
  }
}

void check_size(DType d, std::span<const std::byte> bytes, uint64_t n, uint64_t numel) {
  if (bytes.size() < storage_bytes(d, n))
    throw UsageError("tensor statistics: " + std::to_string(bytes.size()) + " bytes hold fewer than the " +
                     std::to_string(numel) + " elements of its shape");
}

}  // namespace

TensorStats tensor_stats(DType dtype, std::span<const std::byte> bytes, uint64_t numel, int bins) {
  if (bins < 1 || bins > kMaxBins)
    throw UsageError("histogram bins must be 1.." + std::to_string(kMaxBins) + ", not " + std::to_string(bins));
  DType d = dtype;
  uint64_t n = numel;
  if (is_complex(dtype)) {
    d = component(dtype);
    n = numel * 2;
  }
  check_size(d, bytes, n, numel);

  TensorStats s;
  s.count = n;
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for_each_run(d, bytes, n, [&](std::span<const double> xs) {
    for (double x : xs) {
      if (std::isnan(x)) {
        ++s.nan;
        continue;
      }
      if (std::isinf(x)) {
        ++(x > 0 ? s.pos_inf : s.neg_inf);
        continue;
      }
      ++s.finite;
      if (x == 0) ++s.zeros;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
    }
  });
  if (s.finite == 0) return s;
  s.has_range = true;
  s.min = lo;
  s.max = hi;
  s.mean = sum / static_cast<double>(s.finite);

  // numpy's histogram: equal bins over the range, edges as numpy.linspace makes them, and a
  // value's bin found from its offset, then corrected against the edges themselves so that
  // rounding never puts a value on the wrong side of an edge.
  double first = lo, last = hi;
  if (first == last) {
    first -= 0.5;
    last += 0.5;
  }
  s.edges.resize(static_cast<size_t>(bins) + 1);
  // A range wider than the largest double (-1e308 to 1e308) is measured in bins, which fit.
  const bool wide = !std::isfinite(last - first);
  const double step = wide ? last / bins - first / bins : (last - first) / bins;
  for (int i = 0; i <= bins; ++i) s.edges[static_cast<size_t>(i)] = i * step + first;
  s.edges.back() = last;
  s.counts.assign(static_cast<size_t>(bins), 0);
  double squares = 0;
  for_each_run(d, bytes, n, [&](std::span<const double> xs) {
    for (double x : xs) {
      if (!std::isfinite(x)) continue;
      squares += (x - s.mean) * (x - s.mean);
      const double at = wide ? (0.5 * x - 0.5 * first) / (0.5 * step) : (x - first) / (last - first) * bins;
      auto i = static_cast<int64_t>(std::clamp(at, 0.0, static_cast<double>(bins - 1)));
      if (x < s.edges[static_cast<size_t>(i)]) --i;
      else if (i != bins - 1 && x >= s.edges[static_cast<size_t>(i) + 1]) ++i;
      ++s.counts[static_cast<size_t>(i)];
    }
  });
  s.std = std::sqrt(squares / static_cast<double>(s.finite));
  return s;
}

double max_abs_value(DType dtype, std::span<const std::byte> bytes, uint64_t numel) {
  DType d = is_complex(dtype) ? component(dtype) : dtype;
  uint64_t n = is_complex(dtype) ? numel * 2 : numel;
  check_size(d, bytes, n, numel);
  double m = 0;
  for_each_run(d, bytes, n, [&](std::span<const double> xs) {
    for (double x : xs)
      if (!std::isnan(x)) m = std::max(m, std::fabs(x));
  });
  return m;
}

}  // namespace ckpt::serve::ui
