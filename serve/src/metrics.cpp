#include "metrics.hpp"

#include <cstdio>

namespace ckpt::serve::detail {

namespace {

// A label value: backslash, double quote and newline escaped, as the format requires.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <size_t N, typename H>
void histogram(std::string& out, const std::string& name, const std::map<std::string, H>& by_model,
               const std::array<double, N>& bounds) {
  for (const auto& [model, h] : by_model) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N; ++i) {
      cumulative += h.counts[i];
      out += name + "_bucket{model=\"" + label(model) + "\",le=\"" + number(bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += name + "_bucket{model=\"" + label(model) + "\",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    out += name + "_sum{model=\"" + label(model) + "\"} " + number(h.sum) + "\n";
    out += name + "_count{model=\"" + label(model) + "\"} " + std::to_string(h.count) + "\n";
  }
}

template <typename H, size_t N>
void observe(H& h, const std::array<double, N>& bounds, double v) {
  size_t i = 0;
  while (i < N && v > bounds[i]) ++i;
  if (i < N) ++h.counts[i];
  ++h.count;
  h.sum += v;
}

}  // namespace

void Metrics::request(const std::string& model, const std::string& api, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{model, api, status}];
  if (api == "predict") observe(latency_[model], kLatencyBounds, seconds);
}

void Metrics::batch(const std::string& model, int64_t rows) {
  std::lock_guard lock(mu_);
  observe(batches_[model], kBatchBounds, static_cast<double>(rows));
}

void Metrics::version(const std::string& model, int64_t version) {
  std::lock_guard lock(mu_);
  versions_[model] = version;
  failures_.try_emplace(model, 0);  // so a model shows its counters at 0 from the start
  swaps_.try_emplace(model, 0);
}

void Metrics::load_failure(const std::string& model) {
  std::lock_guard lock(mu_);
  ++failures_[model];
}

void Metrics::swap(const std::string& model) {
  std::lock_guard lock(mu_);
  ++swaps_[model];
}

std::string Metrics::text() const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP ckpt_serve_requests_total Requests answered, by model, API and HTTP status code.\n";
  out += "# TYPE ckpt_serve_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [model, api, status] = key;
    out += "ckpt_serve_requests_total{model=\"" + label(model) + "\",api=\"" + api + "\",code=\"" + std::to_string(status) +
           "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP ckpt_serve_request_errors_total Requests answered with a status of 400 or more, by model and code.\n";
  out += "# TYPE ckpt_serve_request_errors_total counter\n";
  std::map<std::pair<std::string, int>, uint64_t> errors;
  for (const auto& [key, n] : requests_)
    if (std::get<2>(key) >= 400) errors[{std::get<0>(key), std::get<2>(key)}] += n;
  for (const auto& [key, n] : errors)
    out += "ckpt_serve_request_errors_total{model=\"" + label(key.first) + "\",code=\"" + std::to_string(key.second) +
           "\"} " + std::to_string(n) + "\n";
  out += "# HELP ckpt_serve_predict_latency_seconds Time a predict request spent in the server: parsing, waiting for its batch, running, answering.\n";
  out += "# TYPE ckpt_serve_predict_latency_seconds histogram\n";
  histogram(out, "ckpt_serve_predict_latency_seconds", latency_, kLatencyBounds);
  out += "# HELP ckpt_serve_batch_size Rows per batch the model ran (dynamic batching).\n";
  out += "# TYPE ckpt_serve_batch_size histogram\n";
  histogram(out, "ckpt_serve_batch_size", batches_, kBatchBounds);
  out += "# HELP ckpt_serve_model_version The version each model serves now.\n";
  out += "# TYPE ckpt_serve_model_version gauge\n";
  for (const auto& [model, v] : versions_) out += "ckpt_serve_model_version{model=\"" + label(model) + "\"} " + std::to_string(v) + "\n";
  out += "# HELP ckpt_serve_model_swaps_total New versions swapped in after the first.\n";
  out += "# TYPE ckpt_serve_model_swaps_total counter\n";
  for (const auto& [model, n] : swaps_) out += "ckpt_serve_model_swaps_total{model=\"" + label(model) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP ckpt_serve_model_load_failures_total Versions that failed to load or verify (the old one kept serving).\n";
  out += "# TYPE ckpt_serve_model_load_failures_total counter\n";
  for (const auto& [model, n] : failures_)
    out += "ckpt_serve_model_load_failures_total{model=\"" + label(model) + "\"} " + std::to_string(n) + "\n";
  return out;
}

}  // namespace ckpt::serve::detail
