// What `ckpt train` prints: one line per epoch on stdout, and on a terminal a progress bar whose
// rate counts training samples per second (not bytes).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <pty.h>
#include <random>
#include <regex>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct RunDir : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("ckpt-cli-train-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string config(const std::string& model, int train_limit) {
    fs::path p = dir / "train.json";
    std::ofstream(p) << R"({"model": )" << model << R"(, "optimizer": {"type": "sgd", "lr": 0.05},
      "data": {"train_limit": )" << train_limit << R"(, "test_limit": 500}, "epochs": 1, "threads": 1,
      "checkpoint": {"backend": "msgpack", "dir": ")" << (dir / "run").string() << R"(", "resume": "none"}})";
    return p.string();
  }
};

struct Output {
  int code;
  std::string text;
};

// Runs `ckpt train CONFIG` with stdout and stderr on a pseudo-terminal, as in a user's shell.
Output train_on_terminal(const std::string& config) {
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    ::execl(CKPT_CLI, CKPT_CLI, "train", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string text;
  std::array<char, 4096> buf{};
  ssize_t n;
  // Linux reports EIO on the master once the child has exited and the terminal is closed.
  while ((n = ::read(master, buf.data(), buf.size())) > 0) text.append(buf.data(), static_cast<size_t>(n));
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

Output train_piped(const std::string& config) {
  FILE* p = ::popen((std::string(CKPT_CLI) + " train " + config + " 2>&1").c_str(), "r");
  std::string text;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

const std::regex kEpochLine(
    R"(epoch 1/1  lr 0\.05  loss [0-9.]+  acc [0-9.]+  test_loss [0-9.]+  test_acc [0-9.]+  [0-9]+ samples/s  saved step-[0-9]{9}\.msgpack)");

}  // namespace

TEST_F(RunDir, TrainPrintsOneLinePerEpochAndNoBarWhenPiped) {
  auto r = train_piped(config(R"({"type": "mlp", "hidden": [32]})", 2000));
  ASSERT_EQ(r.code, 0) << r.text;
  EXPECT_TRUE(std::regex_search(r.text, kEpochLine)) << r.text;
  EXPECT_NE(r.text.find("final checkpoint: "), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find('\r'), std::string::npos) << "a progress bar on a pipe:\n" << r.text;
}

TEST_F(RunDir, TrainProgressBarOnATerminalCountsSamplesPerSecond) {
  // The bar appears after half a second of an epoch: ~1 s of ConvNet training at one thread.
  auto r = train_on_terminal(config(R"({"type": "convnet"})", 32000));
  ASSERT_EQ(r.code, 0) << r.text;
  auto at = r.text.rfind("\repoch [");
  ASSERT_NE(at, std::string::npos) << "no progress bar:\n" << r.text;
  std::string bar = r.text.substr(at + 1, r.text.find_first_of("\r\n", at + 1) - at - 1);
  EXPECT_TRUE(std::regex_match(bar, std::regex(R"(epoch \[[#.]{30}\] +[0-9.]+% +[0-9]+ samples/s)"))) << bar;
  EXPECT_EQ(r.text.find("MB/s"), std::string::npos) << r.text;
  EXPECT_TRUE(std::regex_search(r.text, kEpochLine)) << r.text;
}
