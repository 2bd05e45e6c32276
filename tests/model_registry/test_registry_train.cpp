// ckpt train with the registry: the config's "registry" section, and eval/predict taking
// registry:NAME@ALIAS (built with the trainer only).
#include "registry_cli_fixture.hpp"

namespace ckpt_test {
namespace {

std::string train_config(const std::string& registry_section) {
  return R"({"model": {"type": "mlp", "hidden": [16]}, "optimizer": {"type": "sgd", "lr": 0.05},
      "epochs": 2, "batch_size": 64, "seed": 3, "threads": 1, "data": {"train_limit": 512, "test_limit": 128},
      "checkpoint": {"backend": "msgpack", "dir": "ck", "resume": "none", "keep_last": 0})" +
         (registry_section.empty() ? std::string() : ", \"registry\": " + registry_section) + "}";
}

// A model trained by `ckpt train`, registered, then evaluated and run from the registry.
TEST_F(RegistryCli, EvalAndPredictTakeRegistryReferences) {
  {
    std::ofstream cfg(tmp_.path / "mlp.json");
    cfg << train_config("");
  }
  std::string out;
  ASSERT_EQ(run("cd " + tmp_.path.string() + " && " + CKPT_CLI + " train mlp.json", out), 0) << out;
  const size_t at = out.find("final checkpoint: ");
  ASSERT_NE(at, std::string::npos) << out;
  std::string file = out.substr(at + 18);
  file = (tmp_.path / file.substr(0, file.find('\n'))).string();
  ASSERT_EQ(registry("register " + file + " --name mlp --alias production", out), 0) << out;
  ASSERT_EQ(registry("show mlp@production --json", out), 0) << out;
  EXPECT_NE(out.find("\"test_accuracy\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"seed\": 3"), std::string::npos) << out;
  EXPECT_NE(out.find("train_limit"), std::string::npos) << out;  // the config's text, as lineage

  const std::string env = "CKPT_REGISTRY=" + uri_ + " ";
  std::string from_file, from_registry;
  ASSERT_EQ(run(std::string(CKPT_CLI) + " predict " + file + " --images 3", from_file), 0) << from_file;
  ASSERT_EQ(run(env + CKPT_CLI + " predict registry:mlp@production --images 3", from_registry), 0) << from_registry;
  EXPECT_EQ(from_file, from_registry);
  ASSERT_EQ(run(env + CKPT_CLI + " eval registry:mlp/1 --limit 64", out), 0) << out;
  EXPECT_NE(out.find("test accuracy"), std::string::npos) << out;
  EXPECT_EQ(run(env + CKPT_CLI + " eval registry:mlp@staging --limit 64", out), 2) << out;
  EXPECT_NE(out.find("no alias 'staging'"), std::string::npos) << out;
}

TEST_F(RegistryCli, TrainRegistersAsItSaves) {
  {
    std::ofstream cfg(tmp_.path / "every.json");
    cfg << train_config(R"({"uri": ")" + uri_ + R"(", "name": "mlp", "register": "every", "alias": "candidate"})");
  }
  std::string out;
  ASSERT_EQ(run("cd " + tmp_.path.string() + " && " + CKPT_CLI + " train every.json", out), 0) << out;
  EXPECT_NE(out.find("registered"), std::string::npos) << out;
  ASSERT_EQ(registry("list mlp", out), 0) << out;
  EXPECT_NE(out.find("mlp/1  READY"), std::string::npos) << out;
  EXPECT_NE(out.find("mlp/2  READY"), std::string::npos) << out;
  ASSERT_EQ(registry("show mlp@candidate --json", out), 0) << out;
  EXPECT_NE(out.find("\"version\": 2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"test_accuracy\""), std::string::npos) << out;
  EXPECT_NE(out.find("register\\\": \\\"every"), std::string::npos) << out;  // the whole config, as lineage
  ASSERT_EQ(registry("history mlp@candidate", out), 0) << out;
  EXPECT_NE(out.find("1 -> 2"), std::string::npos) << out;

  // "last": one version, with the run's end; a resumed run names its parent.
  {
    std::ofstream cfg(tmp_.path / "last.json");
    cfg << train_config(R"({"uri": ")" + uri_ + R"(", "name": "mlp-last", "register": "last"})");
  }
  ASSERT_EQ(run("cd " + tmp_.path.string() + " && " + CKPT_CLI + " train last.json", out), 0) << out;
  ASSERT_EQ(registry("show mlp-last --json", out), 0) << out;
  EXPECT_NE(out.find("\"version\": 1"), std::string::npos) << out;
  EXPECT_EQ(out.find("\"end\": \"\""), std::string::npos) << out;

  // A bad section is refused before training, naming the key.
  {
    std::ofstream cfg(tmp_.path / "bad.json");
    cfg << train_config(R"({"name": "mlp", "register": "sometimes"})");
  }
  EXPECT_EQ(run("cd " + tmp_.path.string() + " && " + CKPT_CLI + " train bad.json", out), 2) << out;
  EXPECT_NE(out.find("registry.register"), std::string::npos) << out;
}

}  // namespace
}  // namespace ckpt_test
