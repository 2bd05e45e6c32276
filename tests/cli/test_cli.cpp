// The `ckpt` program as a user runs it: output and exit codes (0 ok, 1 finding, 2 bad input).
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  std::string cmd = std::string(CKPT_CLI) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct Files : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("ckpt-cli-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir);
    ckpt::Checkpoint c;
    c.model_state.add_tensor("fc.weight", ckpt::Tensor::from<float>(ckpt::DType::f32, {2, 2}, {1, 2, 3, 4}));
    c.trainer.set("epoch", 1);
    ckpt::save(c, dir / "a.json");
    c.model_state.set_tensor("fc.weight", ckpt::Tensor::from<float>(ckpt::DType::f32, {2, 2}, {1, 2, 3, 4.5}));
    ckpt::save(c, dir / "b.json");
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string f(const std::string& name) { return (dir / name).string(); }
};

}  // namespace

TEST_F(Files, PluginsListsTheInTreeFormats) {
  auto r = run("plugins");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("json"), std::string::npos);
  EXPECT_NE(r.out.find("msgpack"), std::string::npos);
}

TEST_F(Files, ConvertThenDiffIsIdenticalAndVerifyPasses) {
  auto c = run("convert " + f("a.json") + " " + f("a.msgpack"));
  ASSERT_EQ(c.code, 0) << c.out;
  auto back = run("convert " + f("a.msgpack") + " " + f("a2.json"));
  ASSERT_EQ(back.code, 0) << back.out;
  auto d = run("diff " + f("a.json") + " " + f("a2.json"));
  EXPECT_EQ(d.code, 0) << d.out;
  EXPECT_NE(d.out.find("identical"), std::string::npos);
  auto v = run("verify " + f("a.msgpack"));
  EXPECT_EQ(v.code, 0) << v.out;
}

// safetensors keeps the tree in an entry of ckpt's own: converting to it says what a plain
// safetensors reader would not see, and still succeeds without --allow-lossy.
TEST_F(Files, ConvertToSafetensorsSaysWhatOnlyCkptReadsBack) {
  auto c = run("convert " + f("a.json") + " " + f("a.safetensors"));
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("ckpt: note: other safetensors readers see " + f("a.safetensors") +
                       "'s tensors and the string attributes of its root and meta; only ckpt reads back the rest: "),
            std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("trainer (1 attribute)"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("meta ("), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("lossy"), std::string::npos) << c.out;
  EXPECT_EQ(run("diff " + f("a.json") + " " + f("a.safetensors")).code, 0);
  // Formats that hold the tree themselves say nothing of the kind.
  auto m = run("convert " + f("a.json") + " " + f("a.msgpack"));
  ASSERT_EQ(m.code, 0) << m.out;
  EXPECT_EQ(m.out.find("note:"), std::string::npos) << m.out;
}

TEST_F(Files, DiffReportsTheChangedTensorWithExitCodeOne) {
  auto d = run("diff " + f("a.json") + " " + f("b.json"));
  EXPECT_EQ(d.code, 1) << d.out;
  EXPECT_NE(d.out.find("model/state/fc.weight"), std::string::npos);
  EXPECT_NE(d.out.find("max abs diff 0.5"), std::string::npos);
  EXPECT_EQ(run("diff " + f("a.json") + " " + f("b.json") + " --atol 0.6").code, 0);
}

TEST_F(Files, InspectShowsTreeAndJson) {
  auto i = run("inspect " + f("a.json"));
  EXPECT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("fc.weight  f32 [2, 2]"), std::string::npos) << i.out;
  auto j = run("inspect --json " + f("a.json"));
  EXPECT_EQ(j.code, 0);
  EXPECT_NE(j.out.find("\"dtype\": \"f32\""), std::string::npos) << j.out;
}

TEST_F(Files, BadInputExitsTwoWithTheFileNamed) {
  std::ofstream(f("junk.json")) << "{\"not\": \"ours\"";
  auto r = run("inspect " + f("junk.json"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("junk.json"), std::string::npos);
  EXPECT_EQ(run("inspect " + f("missing.json")).code, 2);
  EXPECT_EQ(run("convert " + f("a.json")).code, 2);  // missing DST
  EXPECT_EQ(run("convert " + f("a.json") + " " + f("x.msgpack") + " --to nosuchformat").code, 2);
}

TEST_F(Files, VerifyFindsAFlippedByteWithExitCodeOne) {
  ASSERT_EQ(run("convert " + f("a.json") + " " + f("a.msgpack")).code, 0);
  // Flip one bit of the tensor's last element, found by its bytes (msgpack stores them raw).
  std::ifstream in(f("a.msgpack"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const float values[4] = {1, 2, 3, 4};
  size_t at = bytes.find(std::string(reinterpret_cast<const char*>(values), sizeof values));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 15] = static_cast<char>(bytes[at + 15] ^ 0x01);
  std::ofstream(f("a.msgpack"), std::ios::binary) << bytes;
  auto v = run("verify " + f("a.msgpack"));
  EXPECT_EQ(v.code, 1) << v.out;
  EXPECT_NE(v.out.find("model/state/fc.weight: data hash"), std::string::npos) << v.out;
}

// A file another tool wrote records no hashes: verify checks its structure and passes, saying
// the data was not checked; --require-hashes makes that a finding. A file with hashes passes
// either way.
TEST_F(Files, VerifyRequireHashesFailsAFileWithoutThem) {
  std::ofstream(f("plain.json")) << R"({"$format": "ckpt-json", "$version": 1, "w": {"$dtype": "f32", "$shape": [1], "$data": "AACAPw=="}})";
  auto v = run("verify " + f("plain.json"));
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("no hashes recorded, so data could not be checked"), std::string::npos) << v.out;
  auto strict = run("verify --require-hashes " + f("plain.json"));
  EXPECT_EQ(strict.code, 1) << strict.out;
  EXPECT_NE(strict.out.find("FAILED " + f("plain.json") + ": no hashes recorded for its 1 tensors"), std::string::npos) << strict.out;
  auto ours = run("verify --require-hashes " + f("a.json"));
  EXPECT_EQ(ours.code, 0) << ours.out;
}
