// /metrics in Prometheus' text exposition format (version 0.0.4): counters of requests by model,
// API and status code, histograms of request latency and batch sizes, and the version each
// model serves. Model labels are only ever served names (or ""), so label sets stay bounded.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace ckpt::serve::detail {

class Metrics {
 public:
  void request(const std::string& model, const std::string& api, int status, double seconds);
  void batch(const std::string& model, int64_t rows);
  void version(const std::string& model, int64_t version);
  void load_failure(const std::string& model);
  void swap(const std::string& model);
  std::string text() const;

 private:
  static constexpr std::array<double, 14> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,    0.25,  0.5,    1,     2.5,   5,     10};
  static constexpr std::array<double, 11> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  template <size_t N>
  struct Histogram {
    std::array<uint64_t, N> counts{};  // per bucket (not cumulative)
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram<kLatencyBounds.size()>> latency_;
  std::map<std::string, Histogram<kBatchBounds.size()>> batches_;
  std::map<std::string, int64_t> versions_;
  std::map<std::string, uint64_t> failures_, swaps_;
};

}  // namespace ckpt::serve::detail
