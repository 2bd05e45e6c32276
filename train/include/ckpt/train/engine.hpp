#pragma once

#include <memory>

namespace dnnl {
struct engine;
struct stream;
}  // namespace dnnl

namespace ckpt::train {

// The CPU engine and its stream. Threads come from OpenMP: set_threads applies to the calling
// thread, so call it on the thread that runs the model, before the first forward. Primitives are
// cached per thread count, so changing it later is correct but builds new primitives.
class Engine {
 public:
  Engine();
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  dnnl::engine& engine();
  dnnl::stream& stream();
  // Throws UsageError for n < 1.
  static void set_threads(int n);
  static int threads();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ckpt::train
