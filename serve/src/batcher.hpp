// Dynamic batching, as TensorFlow Serving's batching does it: one thread owns a model (a
// train::Model is not thread-safe) and runs the requests queued for it together, up to
// max_batch rows or until batch_timeout has passed since the first of them arrived, then hands
// each request its rows of the output.
//
// oneDNN picks its kernel by batch size, and kernels round differently: on this machine a
// row's logits are the same in every batch of 2-15 rows and in every batch of 16 or more, but
// differ between those and a batch of one. In exact mode (the default) the batcher measures
// these classes for its model when it starts (a probe batch run at every size up to
// max_batch, forwards and reversed, which also shows whether a row's place in the batch
// matters) and only puts requests together when the batch's size is in the same class as
// each request's own size, so every answer is bit-identical to running the request alone, as
// `ckpt predict` does. Otherwise (exact off) any requests are put together, as TF Serving does.
#pragma once

#include <ckpt/train/model.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace ckpt::serve::detail {

struct BatchOptions {
  int64_t max_batch = 32;                    // rows; a larger request runs alone, unsplit
  std::chrono::microseconds batch_timeout{1000};
  int threads = 1;                           // the model's compute threads (as ckpt predict's --threads)
  bool exact = true;                         // batch only where it changes no bit (see above)
};

class Batcher {
 public:
  // Called on the batcher's thread with the rows of each batch run.
  using BatchObserver = std::function<void(int64_t rows)>;
  Batcher(std::unique_ptr<train::Model> model, BatchOptions options, BatchObserver observer = {});
  // Runs what is queued, then joins the thread.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  const Shape& input_shape() const { return input_shape_; }
  // The kernel class of each batch size 1..max_batch (index 0 unused); all 0 when not exact.
  const std::vector<int>& batch_classes() const { return class_of_; }
  // The classes as ranges of batch sizes, "1 | 2-15 | 16-32"; "any" when not exact.
  std::string describe_classes() const;
  // One sample's output shape (without the batch dimension).
  const Shape& output_shape() const { return output_shape_; }
  int64_t input_size() const { return input_size_; }
  int64_t output_size() const { return output_size_; }

  // `rows` samples, input_size() floats each; blocks until its batch has run and returns
  // rows * output_size() floats. Rethrows the model's error.
  std::vector<float> run(std::span<const float> input, int64_t rows);

 private:
  struct Job;
  void loop();
  void calibrate();
  // Whether a batch of `rows` may hold a request of `request_rows`.
  bool compatible(int64_t rows, int64_t request_rows) const;

  std::unique_ptr<train::Model> model_;
  BatchOptions options_;
  BatchObserver observer_;
  Shape input_shape_, output_shape_;
  int64_t input_size_ = 0, output_size_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  bool stop_ = false;
  bool ready_ = false;
  std::exception_ptr start_error_;
  std::vector<int> class_of_;
  bool position_dependent_ = false;
  std::thread thread_;
};

}  // namespace ckpt::serve::detail
