// The `ckpt registry` CLI tests' fixture: a scratch folder with a small checkpoint and an
// SQLite registry URI.
#pragma once

#include "../support/scratch.hpp"

#include <ckpt/document.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <fstream>

namespace ckpt_test {

namespace fs = std::filesystem;

class RegistryCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ckpt::Document doc;
    auto& state = doc.group("model").group("state");
    state.add_tensor("w", ckpt::Tensor::from<float>(ckpt::DType::f32, {4}, {1, 2, 3, 4}));
    state.add_tensor("b", ckpt::Tensor::from<float>(ckpt::DType::f32, {2}, {5, 6}));
    doc.group("trainer").group("metrics").set("test_accuracy", 0.875);
    ckpt::SaveOptions o;
    o.fsync = false;
    ckpt::write_document(doc, tmp_.path / "a.msgpack", o);
    uri_ = "sqlite://" + (tmp_.path / "reg.db").string();
  }
  // Runs `ckpt registry --registry URI ARGS`.
  int registry(const std::string& args, std::string& out) {
    return run(std::string(CKPT_CLI) + " registry --registry " + uri_ + " " + args, out);
  }
  TempDir tmp_{"registry-cli"};
  std::string uri_;
};

}  // namespace ckpt_test
