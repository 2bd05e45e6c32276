#include "commands.hpp"

#include <ckpt/io.hpp>
#include <ckpt/registry/model_registry.hpp>
#include <ckpt/train/trainer.hpp>

#include <cstdio>

namespace ckpt::cli {

namespace {
train::Dataset test_data(const std::string& dir, int64_t limit) {
  return train::load_fashion_mnist(dir, "test", static_cast<size_t>(limit));
}
}  // namespace

Runner add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Rebuild the model from a checkpoint alone and report its test accuracy");
  static std::string file, data = train::kFashionMnistDir;
  static int64_t limit = 0, threads = 1;
  cmd->add_option("CKPT", file, "checkpoint file (any format), or registry:NAME@ALIAS")->required();
  cmd->add_option("--data", data, "Fashion-MNIST folder");
  cmd->add_option("--limit", limit, "evaluate the first N test images only");
  cmd->add_option("--threads", threads, "compute threads");
  return [] {
    train::Engine::set_threads(static_cast<int>(threads));
    model_registry::ResolvedInput input(file);  // "registry:NAME@ALIAS" as well as a file
    auto model = train::model_from_checkpoint(load(input.path()));
    auto ds = test_data(data, limit);
    auto e = train::evaluate(*model, ds, 256);
    std::printf("%s: test accuracy %.4f (%lld images), loss %.4f\n", file.c_str(), e.accuracy,
                static_cast<long long>(e.samples), e.loss);
    return kOk;
  };
}

Runner add_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Print the model's logits for the first N test images, one line each");
  static std::string file, data = train::kFashionMnistDir;
  static int64_t images = 10, threads = 1;
  cmd->add_option("CKPT", file, "checkpoint file (any format), or registry:NAME@ALIAS")->required();
  cmd->add_option("--images", images, "how many test images")->check(CLI::PositiveNumber);
  cmd->add_option("--data", data, "Fashion-MNIST folder");
  cmd->add_option("--threads", threads, "compute threads");
  return [] {
    train::Engine::set_threads(static_cast<int>(threads));
    model_registry::ResolvedInput input(file);  // "registry:NAME@ALIAS" as well as a file
    auto model = train::model_from_checkpoint(load(input.path()));
    auto ds = test_data(data, images);
    std::vector<uint32_t> order(ds.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
    Tensor x;
    std::vector<uint8_t> y;
    train::gather_batch(ds, order, 0, ds.size(), x, y);
    Shape s = {static_cast<int64_t>(ds.size())};
    s.insert(s.end(), model->input_shape().begin(), model->input_shape().end());
    const Tensor& out = model->forward(x.reshape(s));
    auto v = out.data<float>();
    size_t c = static_cast<size_t>(out.shape()[1]);
    for (size_t i = 0; i < ds.size(); ++i) {
      for (size_t k = 0; k < c; ++k) std::printf(k ? " %.9g" : "%.9g", static_cast<double>(v[i * c + k]));
      std::printf("\n");
    }
    return kOk;
  };
}

}  // namespace ckpt::cli
