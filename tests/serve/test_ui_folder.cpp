// Training folders as the trainer leaves them: a signature beside every checkpoint
// (step-<n>.<ext>.sig is not a checkpoint), and links among them, which the page never reads
// through.
#include "test_ui_support.hpp"
#include "held_file.hpp"  // serve/src: how a training folder's files are held
#include "ui_source.hpp"  // serve/src: OpenedCheckpoint, for a link put in place after the listing

#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include <ckpt/errors.hpp>
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

// Links in a training folder: never listed, never read, also when one takes a listed name's
// place after the listing, and not as the newest checkpoint a server was handed.
TEST_F(UiSignedFolder, ThePageNeverReadsThroughALinkInTheFolder) {
  ckpt::save(small_checkpoint(9, 5.0f), dir / "outside.msgpack");
  fs::create_symlink(dir / "outside.msgpack", dir / "run" / "step-000000099.msgpack");
  // A server that followed the link (its newest file) hands it to the page.
  served[0].path = (dir / "run" / "step-000000099.msgpack").string();
  json t = get_json(router, "/api/ui/tree", {{"ckpt", "run"}}, 200);
  EXPECT_EQ(t["file"], "step-000000008.msgpack") << t.dump();
  EXPECT_EQ(t["path"], (dir / "run" / "step-000000008.msgpack").string());
  get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", "step-000000099.msgpack"}}, 404);

  // A listed file replaced by a link between the listing and the open.
  const auto listed = ckpt::serve::ui::training_files(dir / "run");
  ASSERT_EQ(listed.back().name, "step-000000008.msgpack");
  fs::rename(dir / "run" / "step-000000008.msgpack", dir / "moved.msgpack");
  fs::create_symlink(dir / "outside.msgpack", dir / "run" / "step-000000008.msgpack");
  try {
    ckpt::serve::ui::OpenedCheckpoint::from_folder(dir / "run", listed.back().name);
    ADD_FAILURE() << "a link in the folder was opened";
  } catch (const ckpt::serve::ui::HttpError& e) {
    EXPECT_EQ(e.status, 404);
    EXPECT_NE(std::string(e.what()).find("is a link"), std::string::npos) << e.what();
  }
  json m = get_json(router, "/api/ui/metrics", {{"ckpt", "run"}}, 200);
  EXPECT_EQ(m["points"].size(), 1u) << m.dump();  // step 4 only: step 8 and 99 are links now

  // A signature that is a link is not read either.
  fs::rename(dir / "run" / "step-000000004.msgpack.sig", dir / "moved.sig");
  fs::create_symlink(dir / "moved.sig", dir / "run" / "step-000000004.msgpack.sig");
  json s = get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", "step-000000004.msgpack"}}, 200);
  EXPECT_FALSE(s["schema"]["signature"]["present"]) << s.dump();
  EXPECT_NE(s["schema"]["signature"]["problem"].get<std::string>().find("is a link"), std::string::npos) << s.dump();
}

// The mechanism both the page and the model server read a training folder's files through: a
// file held by its descriptor is read as it was when held, whatever its name becomes, and a
// name that is a link, a FIFO or gone is refused, each for what it is.
TEST_F(UiSignedFolder, AHeldFileIsReadThroughItsDescriptorWhateverItsNameBecomes) {
  using ckpt::serve::detail::HeldFile;
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const fs::path f = dir / "run" / "step-000000008.msgpack";
  const std::string before = bytes(f);
  ckpt::save(small_checkpoint(9, 5.0f), dir / "outside.msgpack");
  HeldFile held(f);
  EXPECT_FALSE(held.signature().empty());
  EXPECT_FALSE(held.signature_is_link());
  EXPECT_EQ(held.format().name(), "msgpack");
  fs::create_symlink(dir / "outside.msgpack", dir / "run" / "swap");
  fs::rename(dir / "run" / "swap", f);  // the name is a link now, atomically
  EXPECT_EQ(bytes(held.open_path()), before);
  ckpt::LoadOptions lo;
  lo.format = held.format().name();
  EXPECT_EQ(std::get<int64_t>(*ckpt::load(held.open_path(), lo).trainer.attribute("epoch")), 2);  // step 8, not the link's epoch 9
  auto refusal = [](const fs::path& p) {
    try {
      HeldFile h(p);
    } catch (const HeldFile::Refused& e) {
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
      return static_cast<int>(e.why);
    }
    return -1;
  };
  EXPECT_EQ(refusal(f), static_cast<int>(HeldFile::Refusal::link));
  EXPECT_EQ(refusal(dir / "run" / "step-000000012.msgpack"), static_cast<int>(HeldFile::Refusal::gone));
  ASSERT_EQ(::mkfifo((dir / "run" / "step-000000016.msgpack").c_str(), 0600), 0);
  EXPECT_EQ(refusal(dir / "run" / "step-000000016.msgpack"), static_cast<int>(HeldFile::Refusal::not_regular));
  // An error of a reader of the held file names the file, not the descriptor.
  fs::copy_file(dir / "outside.msgpack", dir / "run" / "step-000000020.msgpack");
  HeldFile other(dir / "run" / "step-000000020.msgpack");
  fs::resize_file(dir / "run" / "step-000000020.msgpack", 10);
  try {
    other.named([&] { return ckpt::read_document(other.open_path(), lo); });
    ADD_FAILURE() << "a truncated file was read";
  } catch (const ckpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("step-000000020.msgpack"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("/proc/self/fd"), std::string::npos) << e.what();
  }
}

}  // namespace
