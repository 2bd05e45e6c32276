// Training throughput (samples/s) of the oneDNN models at batch 64: forward, cross-entropy,
// backward and a plain SGD update w -= lr * g, on synthetic data. torch_train.py runs the same
// step in PyTorch; compare.py runs both, interleaved, and prints the ratios.
#include <ckpt/train/engine.hpp>
#include <ckpt/train/loss.hpp>
#include <ckpt/train/model.hpp>

#include <benchmark/benchmark.h>

#include <ctime>
#include <random>

namespace {

using namespace ckpt;
using namespace ckpt::train;

constexpr int64_t kBatch = 64;

// CPU seconds of the whole process (all OpenMP threads): on a machine shared with other jobs,
// samples per CPU second is steadier than wall-clock throughput.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Vectorised, and split over the threads for large tensors as PyTorch's add_ does (its grain
// size is 32768 elements); GCC's -O2 would leave this loop scalar.
void sgd(Model& m, float lr) {
  for (auto& [name, p] : m.named_parameters()) {
    float* v = p->value.mutable_data<float>().data();
    const float* g = p->grad.data<float>().data();
    const int64_t n = static_cast<int64_t>(p->value.numel());
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) v[i] -= lr * g[i];
  }
}

void train_step(benchmark::State& state, const Group& spec) {
  Engine::set_threads(static_cast<int>(state.range(0)));
  auto model = Model::from_spec(spec, 0);
  Shape shape{kBatch};
  shape.insert(shape.end(), model->input_shape().begin(), model->input_shape().end());
  Tensor x = aligned_tensor(shape);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> u(0, 1);
  for (float& v : x.mutable_data<float>()) v = u(rng);
  std::vector<uint8_t> labels(kBatch);
  for (auto& l : labels) l = static_cast<uint8_t>(rng() % 10);
  Tensor grad;
  auto step = [&] {
    LossResult r = cross_entropy(model->forward(x), labels, grad);
    model->backward(grad);
    sgd(*model, 0.01f);
    benchmark::DoNotOptimize(r.loss);
  };
  step();  // builds the primitives
  double cpu0 = process_cpu_seconds();
  for (auto _ : state) step();
  double cpu = process_cpu_seconds() - cpu0;
  double samples = static_cast<double>(state.iterations() * kBatch);
  state.counters["samples/s"] = benchmark::Counter(samples, benchmark::Counter::kIsRate);
  state.counters["samples/cpu_s"] = samples / cpu;
}

void mlp(benchmark::State& state) { train_step(state, Model::mlp_spec(784, {256, 128}, 10)); }
void convnet(benchmark::State& state) { train_step(state, Model::convnet_spec()); }

BENCHMARK(mlp)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(convnet)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
