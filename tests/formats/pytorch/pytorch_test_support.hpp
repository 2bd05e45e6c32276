// What the pytorch format's tests share: scratch folders, running the real tools (the ckpt
// program, Debian's python3-torch through torch_side.py), and the torch-written files every
// PytorchFormat test reads, written once per test program run.
#pragma once

#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace pytorch_test {

namespace fs = std::filesystem;

inline const fs::path kHere = CKPT_PYTORCH_TEST_DIR;

// Options for converting into `format`, without fsync (scratch files).
inline ckpt::ConvertOptions to(const char* format) {
  ckpt::ConvertOptions o;
  o.to = format;
  o.fsync = false;
  return o;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("ckpt-pytorch-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Runs a shell command line; `out` gets its stdout and stderr. Returns the exit status, or -1
// when it did not exit (a signal: a crash).
inline int run(const std::string& command, std::string& out) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string torch_side(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "torch_side.py").string() + " " + args;
}

inline std::string ckpt_cli(const std::string& args) { return std::string(CKPT_CLI) + " " + args; }

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline std::string bytes_of(const ckpt::Tensor& t) { return {reinterpret_cast<const char*>(t.bytes().data()), t.nbytes()}; }

inline ckpt::SaveOptions as_pytorch(ckpt::Options format_options = {}) {
  ckpt::SaveOptions o;
  o.format = "pytorch";
  o.format_options = std::move(format_options);
  o.fsync = false;
  return o;
}

// The torch files the tests read (torch_side.py fixtures), written once per run.
class PytorchFormat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string out;
    ASSERT_EQ(run(torch_side("fixtures " + dir_->path.string()), out), 0) << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path fixture(const std::string& name) { return dir_->path / name; }
  static inline TempDir* dir_ = nullptr;
};

}  // namespace pytorch_test
