#include <ckpt/errors.hpp>
#include <ckpt/train/engine.hpp>

#include <dnnl.hpp>
#include <omp.h>

#include <mutex>
#include <string>

namespace ckpt::train {

struct Engine::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Engine::Engine() {
  // oneDNN's primitive cache treats some different descriptors as one key (NCHW and NHWC with a
  // single channel, say), so which implementation a primitive gets would depend on what the
  // process created before, and a resumed run could compute with other kernels than the run it
  // resumes. The layers keep their own primitives, so the cache buys nothing here.
  static std::once_flag once;
  std::call_once(once, [] { dnnl::set_primitive_cache_capacity(0); });
  impl_ = std::make_unique<Impl>();
}
Engine::~Engine() = default;
dnnl::engine& Engine::engine() { return impl_->engine; }
dnnl::stream& Engine::stream() { return impl_->stream; }

void Engine::set_threads(int n) {
  if (n < 1) throw UsageError("threads must be at least 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int Engine::threads() { return omp_get_max_threads(); }

}  // namespace ckpt::train
