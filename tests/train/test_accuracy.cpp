// CI-sized accuracy lower bounds: a few seconds of training on part of Fashion-MNIST. The full
// 10-epoch targets (MLP >= 0.88, ConvNet >= 0.89) are test_accuracy_long.cpp and the main job.
#include "accuracy_run.hpp"

#include <ckpt/io.hpp>

#include <gtest/gtest.h>

using namespace ckpt;
using namespace ckpt::train;

TEST(Training, AShortMlpRunLearnsFashionMnist) {
  test::TempRunDir tmp;
  auto cfg = TrainConfig::parse(R"({"model": {"type": "mlp", "hidden": [128]}, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
      "data": {"train_limit": 10000, "test_limit": 2000}, "epochs": 2, "threads": 1,
      "checkpoint": {"backend": "msgpack", "dir": ")" + (tmp.path / "run").string() + R"(", "resume": "none"}})",
                                "short.json", {}, Registry::global());
  auto r = test::train_and_score(cfg, "MLP 784-128-10, 10000 samples, 2 epochs");
  EXPECT_GE(r.last, 0.78);
  // The checkpoint alone rebuilds a model that scores the same.
  auto model = model_from_checkpoint(load(r.final_checkpoint));
  auto test = load_fashion_mnist(kFashionMnistDir, "test", 2000);
  EXPECT_DOUBLE_EQ(evaluate(*model, test, 256).accuracy, r.last);
}

TEST(Training, AShortConvNetRunLearnsFashionMnist) {
  test::TempRunDir tmp;
  auto cfg = TrainConfig::parse(R"({"model": {"type": "convnet"}, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
      "data": {"train_limit": 12000, "test_limit": 2000}, "epochs": 2, "batch_size": 64, "seed": 1, "threads": 1,
      "checkpoint": {"backend": "msgpack", "dir": ")" + (tmp.path / "run").string() + R"(", "resume": "none"}})",
                                "short-convnet.json", {}, Registry::global());
  // About 0.84 here (0.77 after the first epoch); a few seconds of training on one thread, since
  // two OpenMP threads on a machine shared with other jobs can be ten times slower.
  auto r = test::train_and_score(cfg, "ConvNet, 12000 samples, 2 epochs");
  EXPECT_GE(r.last, 0.78);
  auto model = model_from_checkpoint(load(r.final_checkpoint));
  auto test = load_fashion_mnist(kFashionMnistDir, "test", 2000);
  EXPECT_DOUBLE_EQ(evaluate(*model, test, 256).accuracy, r.last);
}
