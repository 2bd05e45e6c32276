// Training folders as the trainer leaves them: a signature beside every checkpoint
// (step-<n>.<ext>.sig is not a checkpoint).
#include "test_ui_support.hpp"

#include <ckpt/keys.hpp>
#include <ckpt/serve/ui_routes.hpp>
#include <ckpt/signature.hpp>

using namespace ckpt_ui_test;
using ckpt::serve::Router;
using ckpt::serve::ServedCheckpoint;

namespace {

// A folder as `ckpt train` with signing leaves it: every checkpoint with FILE.sig beside it.
class UiSignedFolder : public ::testing::Test {
 protected:
  ckpt_test::TempDir dir{"ui-signed"};
  std::vector<ServedCheckpoint> served;
  Router router;
  void SetUp() override {
    fs::create_directories(dir / "run");
    auto [secret, pub] = ckpt::generate_key_pair();
    for (int e = 1; e <= 2; ++e) {
      const fs::path f = dir / "run" / ("step-00000000" + std::to_string(e * 4) + ".msgpack");
      ckpt::save(small_checkpoint(e, 0.1f * static_cast<float>(e)), f);
      ckpt::sign_file(f, secret);
    }
    served = {{"run", 1, (dir / "run").string(), ckpt::serve::newest_training_file(dir / "run").string(), nullptr}};
    ckpt::serve::add_ui_routes(router, [this] { return served; });
  }
};

TEST_F(UiSignedFolder, SignaturesAreNotCheckpoints) {
  EXPECT_EQ(ckpt::serve::newest_training_file(dir / "run"), dir / "run" / "step-000000008.msgpack");
  json j = get_json(router, "/api/ui/checkpoints", {}, 200);
  ASSERT_EQ(j["checkpoints"][0]["files"].size(), 2u) << j.dump();
  EXPECT_EQ(j["checkpoints"][0]["files"][1]["name"], "step-000000008.msgpack");
  json t = get_json(router, "/api/ui/tree", {{"ckpt", "run"}}, 200);
  EXPECT_EQ(t["path"], (dir / "run" / "step-000000008.msgpack").string());
  EXPECT_TRUE(t["schema"]["signature"]["present"]) << t.dump();
  get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", "step-000000008.msgpack.sig"}}, 404);
  json m = get_json(router, "/api/ui/metrics", {{"ckpt", "run"}}, 200);
  EXPECT_EQ(m["points"].size(), 2u);
  EXPECT_TRUE(m["errors"].empty()) << m.dump();
}

TEST_F(UiSignedFolder, ViewOfTheFolderServesItsNewestCheckpoint) {
  ViewProcess view({(dir / "run").string()});
  EXPECT_NE(view.url().find("http://127.0.0.1:"), std::string::npos) << view.output();
  EXPECT_EQ(view.stop(), 0);
}

}  // namespace
