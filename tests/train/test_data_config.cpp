#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/train/config.hpp>
#include <ckpt/train/data.hpp>

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <random>

using namespace ckpt;
using namespace ckpt::train;
namespace fs = std::filesystem;

TEST(FashionMnist, TestSplitHasTenThousandNormalisedImages) {
  Dataset d = load_fashion_mnist(kFashionMnistDir, "test");
  EXPECT_EQ(d.size(), 10000u);
  EXPECT_EQ(d.rows, 28);
  EXPECT_EQ(d.images.size(), 10000u * 784);
  EXPECT_EQ(*std::max_element(d.labels.begin(), d.labels.end()), 9);
  Dataset few = load_fashion_mnist(kFashionMnistDir, "test", 100);
  EXPECT_EQ(few.size(), 100u);
  EXPECT_TRUE(std::equal(few.labels.begin(), few.labels.end(), d.labels.begin()));
}

TEST(FashionMnist, MissingAndCorruptFilesAreClearErrors) {
  fs::path dir = fs::temp_directory_path() / ("fmnist-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  try {
    load_fashion_mnist(dir, "test");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("t10k-images-idx3-ubyte.gz"), std::string::npos);
  }
  // A valid gzip stream holding a wrong magic, and a labels file cut short.
  auto write_gz = [&](const std::string& name, const std::string& bytes) {
    gzFile f = gzopen((dir / name).c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  };
  write_gz("t10k-images-idx3-ubyte.gz", std::string("\0\0\x08\x04", 4) + std::string(12, '\0'));
  write_gz("t10k-labels-idx1-ubyte.gz", std::string("\0\0\x08\x01", 4) + std::string(4, '\0'));
  try {
    load_fashion_mnist(dir, "test");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("magic 2051"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "t10k-images-idx3-ubyte.gz") << "not gzip at all, but gzread passes plain bytes through";
  EXPECT_THROW(load_fashion_mnist(dir, "test"), FormatError);
  fs::remove_all(dir);
}

TEST(Shuffle, EachEpochIsAPermutationThatDependsOnSeedAndEpochOnly) {
  auto a = epoch_order(7, 3, 1000);
  auto b = epoch_order(7, 3, 1000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, epoch_order(7, 4, 1000));
  EXPECT_NE(a, epoch_order(8, 3, 1000));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(sorted[i], i);
}

namespace {
std::string config_error(const std::string& text) {
  try {
    TrainConfig::parse(text, "run.json", {}, Registry::global());
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(TrainConfig, ParsesAFullConfig) {
  auto c = TrainConfig::parse(R"({"model": {"type": "mlp", "hidden": [32]}, "optimizer": {"type": "adam", "lr": 0.001},
      "schedule": {"type": "step", "step_size": 2}, "epochs": 3, "batch_size": 32, "seed": 5, "threads": 2,
      "checkpoint": {"backend": "json", "dir": "runs/a", "every_n_steps": 100, "keep_last": 2,
                     "keep_best": {"metric": "test_loss", "mode": "min"}, "resume": "none"}})",
                              "run.json", {}, Registry::global());
  EXPECT_EQ(c.epochs, 3);
  EXPECT_EQ(c.checkpoint.backend, "json");
  EXPECT_EQ(c.checkpoint.every_n_steps, 100);
  EXPECT_EQ(c.checkpoint.every_n_epochs, 0);
  EXPECT_EQ(c.checkpoint.keep_best.n, 1);
  EXPECT_EQ(std::get<std::string>(*c.optimizer.attribute("type")), "adam");
}

TEST(TrainConfig, ErrorsNameTheFileAndTheKey) {
  const std::string base = R"("model": {"type": "mlp"}, "optimizer": {"type": "sgd"})";
  EXPECT_NE(config_error("{" + base + R"(, "epochs": "ten"})").find("run.json: epochs: expected an integer"), std::string::npos);
  EXPECT_NE(config_error("{" + base + R"(, "epoch": 3})").find("run.json: epoch: unknown key"), std::string::npos);
  std::string backend = config_error("{" + base + R"(, "checkpoint": {"backend": "hdf9"}})");
  EXPECT_NE(backend.find("checkpoint.backend"), std::string::npos) << backend;
  EXPECT_NE(backend.find("msgpack"), std::string::npos) << backend;  // lists the known formats
  EXPECT_NE(config_error("{" + base + R"(, "checkpoint": {"every_n_epochs": 1, "every_n_steps": 5}})").find("not both"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"optimizer": {"type": "sgd"}})").find("model: missing"), std::string::npos);
  EXPECT_NE(config_error(R"({"model": {"type": "resnet"}, "optimizer": {"type": "sgd"}})").find("model.type: unknown model"),
            std::string::npos);
  EXPECT_NE(config_error("{oops").find("not valid JSON"), std::string::npos);
}
