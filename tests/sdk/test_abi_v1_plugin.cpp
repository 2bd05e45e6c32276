// The hello example built against the frozen v1 header (tests/sdk/CMakeLists.txt) stands for a
// plugin built with ckpt 0.1.0: the current host must find it, load it and save and load
// checkpoints through it, bit for bit.
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <random>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const fs::path kPluginDir = CKPT_HELLO_V1_DIR;

class HelloBuiltAgainstV1 : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ckpt-hello-v1-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(HelloBuiltAgainstV1, IsFoundByItsManifestAndLoads) {
  ckpt::Registry reg({{kPluginDir, "test"}});
  EXPECT_TRUE(reg.skipped().empty()) << reg.skipped().front().path << ": " << reg.skipped().front().reason;
  ASSERT_EQ(reg.plugins().size(), 1u);
  EXPECT_EQ(reg.plugins()[0]->name, "hello");
  EXPECT_EQ(reg.plugins()[0]->abi_version, 1u);
  auto info = ckpt::Registry::load_library_info(kPluginDir / "ckpt_hello.so");
  ASSERT_EQ(info->formats.size(), 1u);
  EXPECT_EQ(info->formats[0].name, "hello");
  EXPECT_EQ(info->formats[0].extensions, std::vector<std::string>{".hello"});
  EXPECT_FALSE(info->manifest.empty()) << "the manifest beside it was not checked against it";
}

TEST_F(HelloBuiltAgainstV1, SavesAndLoadsACheckpointThroughTheCurrentHost) {
  ckpt::Registry reg({{kPluginDir, "test"}});
  ckpt::Checkpoint c;
  std::mt19937 rng(7);
  auto w = ckpt::Tensor::empty(ckpt::DType::f32, {4, 3});
  for (float& x : w.mutable_data<float>()) x = std::uniform_real_distribution<float>(-1, 1)(rng);
  c.model_spec.set("type", "linear").set("in_features", 3).set("out_features", 4);
  c.model_state.add_tensor("fc.weight", w);
  c.model_state.add_tensor("fc.bias", ckpt::Tensor::zeros(ckpt::DType::f32, {4}));
  c.optimizer.set("type", "adam").set("betas", std::vector<double>{0.9, 0.999});
  c.optimizer.group("state").group("fc.weight").add_tensor("exp_avg", ckpt::Tensor::zeros(ckpt::DType::bf16, {4, 3}));
  c.trainer.set("epoch", 3).set("loss", 0.25).set("tags", std::vector<std::string>{"a b", "", "\n"});

  const fs::path path = dir_ / "model.hello";
  ckpt::save(c, path, {.registry = &reg});
  EXPECT_EQ(reg.for_reading(path, "auto").name(), "hello") << "the file is not identified as hello";

  ckpt::Checkpoint back = ckpt::load(path, {.verify = true, .registry = &reg});
  ASSERT_NE(back.model_state.find_tensor("fc.weight"), nullptr);
  EXPECT_TRUE(back.model_state.find_tensor("fc.weight")->bit_equal(w));
  EXPECT_TRUE(back.optimizer.find_group_path("state/fc.weight")->find_tensor("exp_avg")->bit_equal(
      ckpt::Tensor::zeros(ckpt::DType::bf16, {4, 3})));
  EXPECT_EQ(std::get<int64_t>(*back.trainer.attribute("epoch")), 3);
  EXPECT_EQ(std::get<std::vector<std::string>>(*back.trainer.attribute("tags")), (std::vector<std::string>{"a b", "", "\n"}));
  EXPECT_TRUE(ckpt::verify_document(ckpt::read_document(path, {.registry = &reg})).ok());
}

TEST_F(HelloBuiltAgainstV1, ADamagedFileIsAFormatErrorNamingTheFile) {
  ckpt::Registry reg({{kPluginDir, "test"}});
  const fs::path path = dir_ / "cut.hello";
  ckpt::Checkpoint c;
  c.model_state.add_tensor("w", ckpt::Tensor::zeros(ckpt::DType::f64, {8}));
  ckpt::save(c, path, {.registry = &reg});
  fs::resize_file(path, fs::file_size(path) - 3);
  try {
    ckpt::load(path, {.format = "hello", .registry = &reg});
    FAIL() << "a truncated file was loaded";
  } catch (const ckpt::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.hello"), std::string::npos) << e.what();
  }
}

}  // namespace
