#include "onnx_test_support.hpp"

#include <ckpt/diff.hpp>
#include <ckpt/train/data.hpp>
#include <ckpt/train/trainer.hpp>

#include <nlohmann/json.hpp>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace onnx_test {

Output run(const std::string& command) {
  Output r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 65536> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Output ckpt_cli(const std::string& args) { return run(std::string(CKPT_CLI) + " " + args); }
Output python(const std::string& args) { return run(std::string(CKPT_PYTHON) + " " + (kHere / "").string() + args); }
Output node_ort(const std::string& args) {
  return run(std::string(CKPT_NODE) + " " + (kHere / "ort_run.js").string() + " " + args);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_test_images(const fs::path& p, int n) {
  auto ds = ckpt::train::load_fashion_mnist(ckpt::train::kFashionMnistDir, "test", static_cast<size_t>(n));
  std::vector<uint32_t> order(ds.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
  ckpt::Tensor x;
  std::vector<uint8_t> y;
  ckpt::train::gather_batch(ds, order, 0, ds.size(), x, y);
  const auto bytes = x.bytes();
  spit(p, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

std::string last_json_line(const std::string& out) {
  std::string line;
  for (size_t at = 0; at < out.size();) {
    const size_t end = std::min(out.find('\n', at), out.size());
    if (out[at] == '{') line = out.substr(at, end - at);
    at = end + 1;
  }
  return line;
}

std::vector<std::vector<double>> parse_rows(const std::string& text) {
  std::vector<std::vector<double>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<double> row;
    double v;
    while (ls >> v) row.push_back(v);
    if (!row.empty()) rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::vector<double>> parse_json_rows(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  const auto dims = j.at("dims").get<std::vector<int64_t>>();
  const auto data = j.at("data").get<std::vector<double>>();
  std::vector<std::vector<double>> rows;
  if (dims.size() != 2 || data.size() != static_cast<size_t>(dims[0] * dims[1])) return rows;
  for (int64_t i = 0; i < dims[0]; ++i)
    rows.emplace_back(data.begin() + i * dims[1], data.begin() + (i + 1) * dims[1]);
  return rows;
}

double max_abs_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return INFINITY;
    for (size_t k = 0; k < a[i].size(); ++k) m = std::max(m, std::abs(a[i][k] - b[i][k]));
  }
  return m;
}

fs::path train_small(const fs::path& dir, const std::string& model_json, const std::string& backend) {
  const std::string text = R"({"model": )" + model_json + R"(,
    "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    "data": {"train_limit": 1024, "test_limit": 256},
    "epochs": 1, "batch_size": 64, "seed": 3, "threads": 1,
    "checkpoint": {"backend": ")" + backend + R"(", "dir": ")" + dir.string() + R"(", "keep_last": 1, "resume": "none"}})";
  auto config = ckpt::train::TrainConfig::parse(text, "onnx-test.json", {}, ckpt::Registry::global());
  return ckpt::train::Trainer(config, ckpt::Registry::global()).run();
}

namespace {
ckpt::Options options_of(std::initializer_list<std::pair<std::string, std::string>> options) {
  return ckpt::Options(options.begin(), options.end());
}
}  // namespace

ckpt::SaveOptions onnx_save(std::initializer_list<std::pair<std::string, std::string>> options) {
  ckpt::SaveOptions o;
  o.format = "onnx";
  o.format_options = options_of(options);
  return o;
}

ckpt::LoadOptions onnx_load(std::initializer_list<std::pair<std::string, std::string>> options) {
  ckpt::LoadOptions o;
  o.format = "onnx";
  o.format_options = options_of(options);
  return o;
}

std::string cpp_check(const fs::path& model) {
  try {
    onnx::checker::check_model(model.string());
    onnx::ModelProto proto;
    if (!proto.ParseFromString(slurp(model))) return "protobuf cannot parse the file";
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

void expect_same_document(const ckpt::Document& a, const ckpt::Document& b) {
  ckpt::DiffOptions exact;
  exact.ignore_meta = false;
  const ckpt::DiffReport r = ckpt::diff_documents(a, b, exact);
  for (const auto& e : r.entries) ADD_FAILURE() << e.path << ": " << e.detail;
}

}  // namespace onnx_test
