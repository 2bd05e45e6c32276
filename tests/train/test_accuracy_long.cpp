// The accuracy targets on the whole of Fashion-MNIST, with the repository's own configs
// (the ones the main job trains): MLP 784-256-128-10 >= 0.88 and the ConvNet >= 0.89 within
// 10 epochs. Minutes of training, so registered only with -DCKPT_LONG_TESTS=ON (label "long").
#include "accuracy_run.hpp"

#include <gtest/gtest.h>

using namespace ckpt;

TEST(LongTraining, MlpReaches88PercentIn10Epochs) {
  test::TempRunDir tmp;
  auto cfg = test::repository_config(CKPT_SOURCE_DIR "/configs/mlp.json", tmp.path / "mlp");
  ASSERT_EQ(cfg.epochs, 10);
  auto r = test::train_and_score(cfg, "configs/mlp.json");
  RecordProperty("best_test_accuracy", std::to_string(r.best));
  RecordProperty("seconds", std::to_string(r.seconds));
  EXPECT_GE(r.best, 0.88);
}

TEST(LongTraining, ConvNetReaches89PercentIn10Epochs) {
  test::TempRunDir tmp;
  auto cfg = test::repository_config(CKPT_SOURCE_DIR "/configs/convnet.json", tmp.path / "convnet");
  ASSERT_EQ(cfg.epochs, 10);
  auto r = test::train_and_score(cfg, "configs/convnet.json");
  RecordProperty("best_test_accuracy", std::to_string(r.best));
  RecordProperty("seconds", std::to_string(r.seconds));
  EXPECT_GE(r.best, 0.89);
}
