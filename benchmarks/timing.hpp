// Wall-clock helpers shared by the peer-comparison benchmarks (hdf5, onnx, ...), which time
// whole operations in alternation with another program rather than through Google Benchmark.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace ckpt::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace ckpt::bench
