// What the pytorch format's tests share: scratch folders, running the real tools (the ckpt
// program, Debian's python3-torch through torch_side.py), and the torch-written files every
// PytorchFormat test reads, written once per test program run.
#pragma once

#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include "scratch.hpp"

#include <filesystem>
#include <fstream>
#include <string>

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

// Scratch folders and running tools with their output captured, as the cross-format tests do.
using ckpt_test::TempDir;
using ckpt_test::run;

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
