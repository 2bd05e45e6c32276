// What the onnx format's tests share: scratch folders, running the real tools (the ckpt
// program, python3-onnx, python3-torch, ONNX Runtime under node), the first Fashion-MNIST test
// images as a raw float32 file, and small trained models.
#pragma once

#include "scratch.hpp"

#include <ckpt/checkpoint.hpp>
#include <ckpt/document.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace onnx_test {

namespace fs = std::filesystem;

inline const fs::path kHere = CKPT_ONNX_TEST_DIR;

using ckpt_test::TempDir;

struct Output {
  int code = -1;
  std::string out;  // stdout and stderr
};
// Runs a shell command line.
Output run(const std::string& command);
// The ckpt program with `args`; Python scripts from this folder with Debian's interpreter; the
// ONNX Runtime script with node.
Output ckpt_cli(const std::string& args);
Output python(const std::string& script_and_args);
Output node_ort(const std::string& args);

std::string slurp(const fs::path& p);
void spit(const fs::path& p, std::string_view bytes);

// The first `n` Fashion-MNIST test images, normalised as the trainer does, as float32 in C
// order [n, 1, 28, 28].
void write_test_images(const fs::path& p, int n);

// The last line of `out` that starts with '{': the JSON a script prints after any warnings.
std::string last_json_line(const std::string& out);

// Rows of numbers: `ckpt predict` output, or {"data": [...], "dims": [n, c]} from the scripts.
std::vector<std::vector<double>> parse_rows(const std::string& text);
std::vector<std::vector<double>> parse_json_rows(const std::string& json_text);
double max_abs_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b);

// Trains `model_json` ({"type": "mlp", ...}) for one short epoch with the onnx backend and
// returns the checkpoint it saved, with optimizer state (SGD momentum) and trainer state.
fs::path train_small(const fs::path& dir, const std::string& model_json, const std::string& backend = "onnx");

ckpt::SaveOptions onnx_save(std::initializer_list<std::pair<std::string, std::string>> options = {});
ckpt::LoadOptions onnx_load(std::initializer_list<std::pair<std::string, std::string>> options = {});

// Debian's libonnx in C++: onnx::checker::check_model on the file (external data included),
// then strict shape inference with type checks. Empty when both pass, else the error.
std::string cpp_check(const fs::path& model);

// Every tensor's bytes equal, and every attribute, group and name.
void expect_same_document(const ckpt::Document& a, const ckpt::Document& b);

}  // namespace onnx_test
