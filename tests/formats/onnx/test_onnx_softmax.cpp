// Specs with softmax layers: the trainer's ready-made models have none, so these take a trained
// MLP and ConvNet and add softmax layers to their specs (at the end, over the classes, and in
// the middle of the ConvNet, over the channels of a 4-d activation, where only opset 13's
// one-axis Softmax matches PyTorch's Softmax(dim=1)). The export passes both checkers and ONNX
// Runtime computes what `ckpt predict` computes; the same graph without ckpt's own metadata
// imports back into the same spec, and `ckpt eval` and `ckpt predict` work on it.
#include "onnx_test_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

using namespace onnx_test;
using nlohmann::json;

namespace {

struct Added {
  const char* after;  // the layer it follows; "" for the end
  const char* name;
  int64_t dim;
  int64_t imported_dim;  // dim as the import gives it: the axis counted from the front
};

struct Case {
  const char* name;
  const char* model_json;
  const char* input_dims;  // the ONNX input's shape for 100 images
  std::vector<Added> softmax;
  std::vector<std::string> nodes;
};
// gtest prints parameters; without this it would dump the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const Case kCases[] = {
    {"mlp", R"({"type": "mlp", "hidden": [64, 32]})", "100 784", {{"", "softmax", 1, 1}},
     {"Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"}},
    {"convnet", R"({"type": "convnet"})", "100 1 28 28", {{"relu1", "channel_softmax", 1, 1}, {"", "softmax", -1, 1}},
     {"Conv", "MaxPool", "Relu", "Softmax", "Conv", "MaxPool", "Relu", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"}},
};

std::vector<std::string> layer_names(const ckpt::Group& spec) {
  return std::get<std::vector<std::string>>(*spec.attribute("layers"));
}

ckpt::Group with_softmax(ckpt::Group spec, const std::vector<Added>& added) {
  for (const Added& a : added) {
    auto names = layer_names(spec);
    auto at = std::string(a.after).empty() ? names.end() : std::find(names.begin(), names.end(), a.after) + 1;
    names.insert(at, a.name);
    spec.set("layers", std::move(names));
    ckpt::Group& layer = spec.add_group(a.name);
    layer.set("type", "softmax");
    layer.set("dim", a.dim);
  }
  return spec;
}

// "0.7900" from "...: test accuracy 0.7900 (100 images), loss ...".
std::string accuracy_of(const std::string& eval_out) {
  const std::string key = "test accuracy ";
  const size_t at = eval_out.find(key);
  if (at == std::string::npos) return {};
  return eval_out.substr(at + key.size(), eval_out.find(' ', at + key.size()) - at - key.size());
}

class Softmax : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(Softmax, ExportsRunsInOnnxRuntimeAndImportsBack) {
  const Case& kind = GetParam();
  TempDir tmp;
  ckpt::Checkpoint c = ckpt::load(train_small(tmp / "run", kind.model_json, "msgpack"));
  c.model_spec = with_softmax(c.model_spec, kind.softmax);
  const fs::path model = tmp / (std::string(kind.name) + "_softmax.onnx");
  ckpt::save(c, model, onnx_save());

  EXPECT_EQ(cpp_check(model), "") << "onnx::checker / shape inference (C++)";
  const Output py = python("onnx_check.py check " + model.string());
  ASSERT_EQ(py.code, 0) << py.out;
  const json info = json::parse(py.out);
  EXPECT_EQ(info["metadata"]["ckpt.graph"], "built from model/spec");
  EXPECT_EQ(info["nodes"].get<std::vector<std::string>>(), kind.nodes);
  EXPECT_EQ(info["outputs"].begin().value(), json::array({"batch", 10}));

  // ONNX Runtime and ckpt's oneDNN model on the same file and images.
  write_test_images(tmp / "x.f32", 100);
  const Output ort = node_ort(model.string() + " " + (tmp / "x.f32").string() + " " + kind.input_dims);
  ASSERT_EQ(ort.code, 0) << ort.out;
  const Output predict = ckpt_cli("predict " + model.string() + " --images 100");
  ASSERT_EQ(predict.code, 0) << predict.out;
  const auto ours = parse_rows(predict.out);
  ASSERT_EQ(ours.size(), 100u);
  ASSERT_EQ(ours[0].size(), 10u);
  for (const auto& row : ours) {
    double sum = 0;
    for (double p : row) sum += p;
    ASSERT_NEAR(sum, 1.0, 1e-5) << "ckpt predict does not end in a softmax over the classes";
  }
  const double diff = max_abs_diff(ours, parse_json_rows(last_json_line(ort.out)));
  std::printf("%s + softmax: max |ckpt predict - ONNX Runtime| over 100x10 probabilities = %.3g\n", kind.name, diff);
  EXPECT_LE(diff, 1e-5);

  // The graph as another tool that keeps only the model saves it: the import rebuilds the spec
  // from the graph alone, softmax layers included, under the same names.
  const fs::path bare = tmp / "bare.onnx";
  const Output strip = python("onnx_check.py strip " + model.string() + " " + bare.string());
  ASSERT_EQ(strip.code, 0) << strip.out;
  const ckpt::Document doc = ckpt::read_document(bare);
  ASSERT_EQ(doc.find_group_path("optimizer"), nullptr) << "still read as ckpt's own file";
  const ckpt::Group* spec = doc.find_group_path("model/spec");
  ASSERT_NE(spec, nullptr) << ckpt::value_to_string(*doc.find_group_path("extra/onnx")->attribute("spec"));
  EXPECT_EQ(*doc.find_group_path("extra/onnx")->attribute("spec"), ckpt::Value(std::string("rebuilt from the graph")));
  EXPECT_EQ(layer_names(*spec), layer_names(c.model_spec));
  for (const Added& a : kind.softmax) {
    SCOPED_TRACE(a.name);
    const ckpt::Group* layer = spec->find_group(a.name);
    ASSERT_NE(layer, nullptr);
    EXPECT_EQ(*layer->attribute("type"), ckpt::Value(std::string("softmax")));
    EXPECT_EQ(*layer->attribute("dim"), ckpt::Value(a.imported_dim));
  }

  const Output again = ckpt_cli("predict " + bare.string() + " --images 100");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_LE(max_abs_diff(parse_rows(again.out), ours), 1e-5);
  const Output eval_bare = ckpt_cli("eval " + bare.string() + " --limit 100");
  ASSERT_EQ(eval_bare.code, 0) << eval_bare.out;
  const Output eval_model = ckpt_cli("eval " + model.string() + " --limit 100");
  ASSERT_EQ(eval_model.code, 0) << eval_model.out;
  EXPECT_NE(accuracy_of(eval_bare.out), "") << eval_bare.out;
  EXPECT_EQ(accuracy_of(eval_bare.out), accuracy_of(eval_model.out)) << eval_bare.out << eval_model.out;
}

INSTANTIATE_TEST_SUITE_P(Onnx, Softmax, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });
