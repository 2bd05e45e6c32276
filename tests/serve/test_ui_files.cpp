// Files that change while the page reads them: the page reads checkpoints, never maps them, so
// a file truncated (or rewritten in place) between its opening and the reading of a tensor
// gives the request an error, not the whole process a SIGBUS (which would take `ckpt serve`'s
// prediction API down with it). The truncation comes after the page opened the file and
// before it reads the tensor: the point where a mapping would fault.
#include "test_ui_support.hpp"
#include "ui_views.hpp"  // serve/src: the views over a checkpoint the test opens itself

#include <ckpt/errors.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/serve/ui_routes.hpp>
#include <ckpt/signature.hpp>

#include <unistd.h>

using namespace ckpt_ui_test;
namespace ui = ckpt::serve::ui;
using ckpt::serve::Router;
using ckpt::serve::ServedCheckpoint;

namespace {

// A checkpoint with a 4 MiB tensor, so most of its data lies in pages past a 1000-byte file.
ckpt::Checkpoint large_checkpoint() {
  ckpt::Checkpoint c = small_checkpoint(1, 0.0f);
  std::vector<float> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 977) * 0.5f;
  c.model_state.add_tensor("big", f32({1024, 1024}, big));
  return c;
}

class UiFiles : public ::testing::Test {
 protected:
  ckpt_test::TempDir dir{"ui-files"};
  std::vector<ServedCheckpoint> served;
  void SetUp() override {
    fs::create_directories(dir / "run");
    ckpt::save(large_checkpoint(), dir / "big.safetensors");
    ckpt::save(large_checkpoint(), dir / "run" / "step-000000001.safetensors");
    served = {{"big", 1, (dir / "big.safetensors").string(), (dir / "big.safetensors").string(), nullptr},
              {"run", 1, (dir / "run").string(), (dir / "run" / "step-000000001.safetensors").string(), nullptr}};
  }
  ui::OpenedCheckpoint open(const std::string& model, const std::string& file = "") {
    return ui::resolve(served, model, std::nullopt, file).open();
  }
  void truncate(const fs::path& p) { ASSERT_EQ(::truncate(p.c_str(), 1000), 0); }
};

TEST_F(UiFiles, StatisticsOfATensorTruncatedAwayAreAnError) {
  const ui::OpenedCheckpoint opened = open("big");
  truncate(dir / "big.safetensors");
  EXPECT_THROW(ui::stats_json(opened, "model/state/big", 64), ckpt::Error);
}

TEST_F(UiFiles, TheHashCheckOfATruncatedFileIsAnError) {
  const ui::OpenedCheckpoint opened = open("big");
  truncate(dir / "big.safetensors");
  EXPECT_THROW(ui::verify_json(opened, std::nullopt), ckpt::Error);
}

TEST_F(UiFiles, TheSignatureCheckOfATruncatedFileIsAnErrorOrAProblem) {
  auto [secret, pub] = ckpt::generate_key_pair();
  ckpt::sign_file(dir / "big.safetensors", secret);
  const ui::OpenedCheckpoint opened = open("big");
  truncate(dir / "big.safetensors");
  try {
    const ckpt::SignatureReport r = opened.check_signature(pub);
    EXPECT_FALSE(r.ok());
  } catch (const ckpt::Error&) {
    // as good: the request answers with the error
  }
}

TEST_F(UiFiles, ATrainingFolderFileTruncatedIsAnErrorNamingTheFile) {
  const ui::OpenedCheckpoint opened = open("run", "step-000000001.safetensors");
  truncate(dir / "run" / "step-000000001.safetensors");
  try {
    ui::stats_json(opened, "model/state/big", 64);
    ADD_FAILURE() << "a truncated tensor was read";
  } catch (const ckpt::Error& e) {
    // Named as the folder's file, not the descriptor it was read through.
    EXPECT_NE(std::string(e.what()).find("step-000000001.safetensors"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("/proc/self/fd"), std::string::npos) << e.what();
  }
}

TEST_F(UiFiles, EveryRequestOverATruncatedFileIsAJsonError) {
  Router router;
  ckpt::serve::add_ui_routes(router, [this] { return served; });
  get_json(router, "/api/ui/stats", {{"ckpt", "big"}, {"tensor", "model/state/big"}}, 200);
  truncate(dir / "big.safetensors");
  truncate(dir / "run" / "step-000000001.safetensors");
  for (const auto& [path, query] : std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
           {"/api/ui/tree", {{"ckpt", "big"}}},
           {"/api/ui/stats", {{"ckpt", "big"}, {"tensor", "model/state/big"}}},
           {"/api/ui/verify", {{"ckpt", "big"}}},
           {"/api/ui/diff", {{"a", "big"}, {"b", "run"}}},
           {"/api/ui/stats", {{"ckpt", "run"}, {"file", "step-000000001.safetensors"}, {"tensor", "model/state/big"}}}}) {
    auto r = get(router, path, query);
    EXPECT_GE(r.status, 400) << path << ": " << r.body;
    EXPECT_TRUE(json::parse(r.body).contains("error")) << path << ": " << r.body;
  }
  json m = get_json(router, "/api/ui/metrics", {{"ckpt", "run"}}, 200);
  EXPECT_EQ(m["errors"].size(), 1u) << m.dump();
}

}  // namespace
