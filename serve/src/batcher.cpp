#include "batcher.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/train/engine.hpp>

#include <cstring>
#include <algorithm>
#include <exception>
#include <iterator>

namespace ckpt::serve::detail {

struct Batcher::Job {
  std::span<const float> input;
  int64_t rows = 0;
  std::chrono::steady_clock::time_point arrived;
  std::vector<float> output;
  std::exception_ptr error;
  bool done = false;
};

Batcher::Batcher(std::unique_ptr<train::Model> model, BatchOptions options, BatchObserver observer)
    : model_(std::move(model)), options_(options), observer_(std::move(observer)) {
  if (options_.max_batch < 1) throw UsageError("--max-batch must be at least 1");
  input_shape_ = model_->input_shape();
  input_size_ = static_cast<int64_t>(numel(input_shape_));
  Shape out = model_->output_shape(1);
  output_shape_.assign(out.begin() + 1, out.end());
  output_size_ = static_cast<int64_t>(numel(output_shape_));
  // The probe runs max_batch^2 rows at every load (each size twice): for the ConvNet on one
  // thread 0.25 s at 32 and 1.9 s at 128 (on a busy machine); quadratic beyond.
  if (options_.exact && options_.max_batch > 256)
    throw UsageError("--max-batch above 256 needs --batching any (exact batching measures every batch size at load)");
  thread_ = std::thread([this] { loop(); });
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return ready_; });
  if (start_error_) {
    stop_ = true;
    lock.unlock();
    thread_.join();
    std::rethrow_exception(start_error_);
  }
}

void Batcher::calibrate() {
  class_of_.assign(static_cast<size_t>(options_.max_batch + 1), 0);
  if (!options_.exact || options_.max_batch == 1) return;
  // A probe batch of arbitrary values; the first M rows are run at every size M, and each size
  // joins the first class whose rows it reproduces bit for bit. The same rows are also run in
  // reverse order: a row must not depend on its place in the batch either, or no request may
  // share a batch.
  Shape shape = {options_.max_batch};
  shape.insert(shape.end(), input_shape_.begin(), input_shape_.end());
  Tensor probe = train::aligned_tensor(shape);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (float& v : probe.mutable_data<float>()) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ull << 24) * 2.0 - 1.0);
  }
  std::vector<std::vector<float>> representatives;
  for (int64_t m = 1; m <= options_.max_batch; ++m) {
    Shape sm = shape;
    sm[0] = m;
    Tensor x = train::aligned_tensor(sm);
    std::memcpy(x.mutable_bytes().data(), probe.bytes().data(), x.nbytes());
    auto y = model_->forward(x).data<float>();
    std::vector<float> out(y.begin(), y.end());
    if (m > 1 && !position_dependent_) {
      const size_t in_row = static_cast<size_t>(input_size_), out_row = static_cast<size_t>(output_size_);
      const auto rows = static_cast<size_t>(m);
      float* dst = x.mutable_data<float>().data();
      const float* src = probe.data<float>().data();
      for (size_t r = 0; r < rows; ++r) std::memcpy(dst + r * in_row, src + (rows - 1 - r) * in_row, in_row * sizeof(float));
      auto z = model_->forward(x).data<float>();
      for (size_t r = 0; r < rows && !position_dependent_; ++r)
        position_dependent_ = std::memcmp(z.data() + r * out_row, out.data() + (rows - 1 - r) * out_row, out_row * sizeof(float)) != 0;
    }
    size_t k = 0;
    for (; k < representatives.size(); ++k) {
      const size_t n = std::min(out.size(), representatives[k].size());
      if (std::memcmp(out.data(), representatives[k].data(), n * sizeof(float)) == 0) break;
    }
    if (k == representatives.size()) representatives.push_back(std::move(out));
    class_of_[static_cast<size_t>(m)] = static_cast<int>(k);
  }
  // Every size its own class: a batch then holds one request.
  if (position_dependent_)
    for (size_t m = 0; m < class_of_.size(); ++m) class_of_[m] = static_cast<int>(m);
}

std::string Batcher::describe_classes() const {
  if (!options_.exact) return "any";
  if (position_dependent_) return "none (a row's bits depend on its place in the batch: requests run alone)";
  // Classes as found; a class whose sizes are not contiguous lists each range.
  std::string out;
  std::vector<std::string> ranges(class_of_.size());
  for (size_t m = 1; m < class_of_.size();) {
    size_t end = m;
    while (end + 1 < class_of_.size() && class_of_[end + 1] == class_of_[m]) ++end;
    auto& r = ranges[static_cast<size_t>(class_of_[m])];
    r += (r.empty() ? "" : ",") + std::to_string(m) + (end > m ? "-" + std::to_string(end) : "");
    m = end + 1;
  }
  for (const auto& r : ranges)
    if (!r.empty()) out += (out.empty() ? "" : " | ") + r;
  return out;
}

bool Batcher::compatible(int64_t rows, int64_t request_rows) const {
  if (rows > options_.max_batch) return false;
  if (request_rows > options_.max_batch) return false;
  return class_of_[static_cast<size_t>(rows)] == class_of_[static_cast<size_t>(request_rows)];
}

Batcher::~Batcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::vector<float> Batcher::run(std::span<const float> input, int64_t rows) {
  if (rows < 1 || input.size() != static_cast<size_t>(rows * input_size_))
    throw UsageError("a batch of " + std::to_string(rows) + " rows needs " + std::to_string(rows * input_size_) +
                     " values, not " + std::to_string(input.size()));
  Job job;
  job.input = input;
  job.rows = rows;
  job.arrived = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  queue_.push_back(&job);
  cv_.notify_all();
  cv_.wait(lock, [&] { return job.done; });
  if (job.error) std::rethrow_exception(job.error);
  return std::move(job.output);
}

void Batcher::loop() {
  // oneDNN's threads come from OpenMP, per calling thread: this one runs the model.
  std::exception_ptr error;
  try {
    train::Engine::set_threads(options_.threads);
    calibrate();
  } catch (...) {
    error = std::current_exception();
  }
  std::unique_lock lock(mu_);
  ready_ = true;
  start_error_ = error;
  cv_.notify_all();
  if (error) return;
  std::vector<Job*> batch;
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    const int64_t first = queue_.front()->rows;
    // Whether a larger batch could still take the first request (in exact mode a request of one
    // row, alone in its class, never waits).
    bool can_grow = false;
    for (int64_t m = first + 1; m <= options_.max_batch && !can_grow; ++m) can_grow = compatible(m, first);
    // Rows that could join the first request now.
    auto joinable = [&] {
      int64_t n = first;
      for (auto it = std::next(queue_.begin()); it != queue_.end(); ++it) {
        const int64_t total = n + (*it)->rows;
        if (compatible(total, (*it)->rows) && compatible(total, first)) n = total;
      }
      return n;
    };
    // Wait for more rows until the batch is full or the first request has waited its timeout.
    const auto deadline = queue_.front()->arrived + options_.batch_timeout;
    while (can_grow && !stop_ && joinable() < options_.max_batch &&
           cv_.wait_until(lock, deadline) != std::cv_status::timeout) {
    }
    // Take the first request, then those after it, in arrival order, that fit and keep every
    // member's class; one larger than max_batch runs alone.
    batch.clear();
    int64_t rows = queue_.front()->rows;
    batch.push_back(queue_.front());
    queue_.pop_front();
    for (auto it = queue_.begin(); it != queue_.end() && rows < options_.max_batch;) {
      const int64_t r = (*it)->rows, total = rows + r;
      if (compatible(total, r) && compatible(total, first)) {
        rows = total;
        batch.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    lock.unlock();
    error = nullptr;
    std::vector<std::vector<float>> outputs(batch.size());
    try {
      Shape shape = {rows};
      shape.insert(shape.end(), input_shape_.begin(), input_shape_.end());
      // Aligned, so the model reads it in place as it reads ckpt predict's input.
      Tensor x = train::aligned_tensor(shape);
      float* dst = x.mutable_data<float>().data();
      for (Job* j : batch) {
        std::memcpy(dst, j->input.data(), j->input.size_bytes());
        dst += j->input.size();
      }
      const Tensor& y = model_->forward(x);
      auto v = y.data<float>();
      if (v.size() != static_cast<size_t>(rows * output_size_))
        throw FormatError("the model returned " + std::to_string(v.size()) + " values for " + std::to_string(rows) + " rows");
      size_t at = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        const size_t n = static_cast<size_t>(batch[i]->rows * output_size_);
        outputs[i].assign(v.begin() + static_cast<ptrdiff_t>(at), v.begin() + static_cast<ptrdiff_t>(at + n));
        at += n;
      }
      if (observer_) observer_(rows);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->output = std::move(outputs[i]);
      batch[i]->error = error;
      batch[i]->done = true;
    }
    cv_.notify_all();
  }
}

}  // namespace ckpt::serve::detail
