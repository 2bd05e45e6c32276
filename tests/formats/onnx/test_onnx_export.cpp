// Models ckpt exports: the graph from model/spec passes both ONNX checkers, ONNX Runtime
// computes what `ckpt predict` computes, and the whole checkpoint (optimizer and trainer
// state included) comes back exactly.
#include "onnx_test_support.hpp"

#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/train/trainer.hpp>

#include <nlohmann/json.hpp>

using namespace onnx_test;
using nlohmann::json;

namespace {

struct Kind {
  const char* name;
  const char* model_json;
  const char* input_dims;  // the ONNX input's shape for 100 images
  std::vector<std::string> nodes;
};

const Kind kKinds[] = {
    {"mlp", R"({"type": "mlp", "hidden": [64, 32]})", "100 784", {"Gemm", "Relu", "Gemm", "Relu", "Gemm"}},
    {"convnet", R"({"type": "convnet"})", "100 1 28 28",
     {"Conv", "MaxPool", "Relu", "Conv", "MaxPool", "Relu", "Flatten", "Gemm", "Relu", "Gemm"}},
};

class Exported : public ::testing::TestWithParam<Kind> {};

}  // namespace

TEST_P(Exported, PassesBothCheckersAndOnnxRuntimeMatchesPredict) {
  const Kind& kind = GetParam();
  TempDir tmp;
  const fs::path model = train_small(tmp / "run", kind.model_json);
  ASSERT_EQ(model.extension(), ".onnx");

  EXPECT_EQ(cpp_check(model), "") << "onnx::checker / shape inference (C++)";
  const Output py = python("onnx_check.py check " + model.string());
  ASSERT_EQ(py.code, 0) << py.out;
  const json info = json::parse(py.out);
  EXPECT_EQ(info["ir_version"], 8);
  EXPECT_EQ(info["opsets"][""], 13);
  EXPECT_EQ(info["nodes"].get<std::vector<std::string>>(), kind.nodes);
  ASSERT_EQ(info["inputs"].size(), 1u);
  EXPECT_EQ(info["inputs"].begin().value()[0], "batch") << "the batch dimension is dynamic";
  EXPECT_EQ(info["outputs"].begin().value(), json::array({"batch", 10}));
  EXPECT_TRUE(info["initializers"].contains("fc1.weight")) << "model/state keeps its names";
  EXPECT_TRUE(info["initializers"].contains("ckpt/optimizer/state/fc1.weight/momentum_buffer"));
  EXPECT_EQ(info["metadata"]["meta/schema"], "ckpt.checkpoint") << "meta goes to metadata_props";
  EXPECT_EQ(info["metadata"]["ckpt.graph"], "built from model/spec");

  write_test_images(tmp / "x.f32", 100);
  const Output ort = node_ort(model.string() + " " + (tmp / "x.f32").string() + " " + kind.input_dims);
  ASSERT_EQ(ort.code, 0) << ort.out;
  EXPECT_EQ(json::parse(last_json_line(ort.out))["version"], "1.30.0");
  const Output predict = ckpt_cli("predict " + model.string() + " --images 100");
  ASSERT_EQ(predict.code, 0) << predict.out;
  const auto ours = parse_rows(predict.out);
  const auto theirs = parse_json_rows(last_json_line(ort.out));
  ASSERT_EQ(ours.size(), 100u);
  ASSERT_EQ(ours[0].size(), 10u);
  const double diff = max_abs_diff(ours, theirs);
  std::printf("%s: max |ckpt predict - ONNX Runtime| over 100x10 logits = %.3g\n", kind.name, diff);
  EXPECT_LE(diff, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Onnx, Exported, ::testing::ValuesIn(kKinds),
                         [](const auto& info) { return std::string(info.param.name); });

// The same training run saved through msgpack and through onnx gives the same checkpoint: the
// optimizer's momentum, the trainer's position and RNG state, the config text, all of it.
TEST(OnnxExport, TrainingStateIsKeptLosslesslyAndResumes) {
  TempDir tmp;
  const std::string mlp = R"({"type": "mlp", "hidden": [32]})";
  const fs::path a = train_small(tmp / "onnx", mlp, "onnx");
  const fs::path b = train_small(tmp / "msgpack", mlp, "msgpack");
  ckpt::Document da = ckpt::read_document(a), db = ckpt::read_document(b);
  EXPECT_TRUE(ckpt::verify_document(da).ok());
  // The config's own text names the backend and the folder, the only intended difference.
  const std::string config = std::get<std::string>(*da.find_group("trainer")->attribute("config"));
  EXPECT_NE(config.find("\"backend\": \"onnx\""), std::string::npos);
  db.find_group("trainer")->set("config", config);
  for (const char* group : {"model", "optimizer", "trainer", "extra"}) {
    SCOPED_TRACE(group);
    ASSERT_NE(da.find_group_path(group), nullptr);
    expect_same_document(*da.find_group_path(group), *db.find_group_path(group));
  }
  const ckpt::Group& ia = *da.find_group_path("meta/integrity");
  const ckpt::Group& ib = *db.find_group_path("meta/integrity");
  for (const char* attribute : {"paths", "digests"}) EXPECT_EQ(*ia.attribute(attribute), *ib.attribute(attribute)) << attribute;
  // Resuming from the onnx checkpoint continues exactly as from the msgpack one.
  auto resume = [&](const fs::path& from, const fs::path& dir, const std::string& backend) {
    const std::string text = R"({"model": )" + mlp + R"(, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
      "data": {"train_limit": 1024, "test_limit": 256}, "epochs": 2, "batch_size": 64, "seed": 3, "threads": 1,
      "checkpoint": {"backend": ")" + backend + R"(", "dir": ")" + dir.string() + R"(", "resume": ")" + from.string() + R"("}})";
    auto config = ckpt::train::TrainConfig::parse(text, "resume.json", {}, ckpt::Registry::global());
    return ckpt::train::Trainer(config, ckpt::Registry::global()).run();
  };
  const ckpt::Document ra = ckpt::read_document(resume(a, tmp / "onnx2", "onnx"));
  const ckpt::Document rb = ckpt::read_document(resume(b, tmp / "msgpack2", "msgpack"));
  expect_same_document(*ra.find_group_path("model/state"), *rb.find_group_path("model/state"));
  expect_same_document(*ra.find_group_path("optimizer"), *rb.find_group_path("optimizer"));
}

// Every dtype, in model/state, at the root and deeper, as python3-onnx reads the bytes.
TEST(OnnxExport, PythonOnnxReadsEveryInitializerAsWritten) {
  TempDir tmp;
  ckpt::Document doc;
  const ckpt::DType all[] = {ckpt::DType::f32, ckpt::DType::f64, ckpt::DType::f16, ckpt::DType::bf16, ckpt::DType::i8,
                             ckpt::DType::u8, ckpt::DType::i16, ckpt::DType::i32, ckpt::DType::i64, ckpt::DType::boolean};
  const int onnx_types[] = {1, 11, 10, 16, 3, 2, 5, 6, 7, 9};
  std::vector<std::tuple<std::string, ckpt::Tensor, int>> expected;
  int k = 0;
  for (ckpt::DType d : all) {
    ckpt::Tensor t = ckpt::Tensor::empty(d, {2, 3});
    auto bytes = t.mutable_bytes();
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(d == ckpt::DType::boolean ? i % 2 : i * 7 + 1);
    const std::string name = "t_" + std::string(ckpt::name(d));
    doc.group("model").group("state").add_tensor(name, t);
    expected.emplace_back(name, t, onnx_types[k]);
    doc.group("optimizer").group("state").group(name).add_tensor("momentum", t);
    expected.emplace_back("ckpt/optimizer/state/" + name + "/momentum", t, onnx_types[k]);
    ++k;
  }
  doc.add_tensor("root_scalar", ckpt::Tensor::from<float>(ckpt::DType::f32, {}, {2.5f}));
  expected.emplace_back("root_scalar", *doc.find_tensor("root_scalar"), 1);
  doc.group("extra").add_tensor("empty", ckpt::Tensor::empty(ckpt::DType::i64, {0, 4}));
  expected.emplace_back("ckpt/extra/empty", *doc.find_tensor_path("extra/empty"), 7);
  const fs::path model = tmp / "all.onnx";
  ckpt::write_document(doc, model, onnx_save());

  const fs::path want = tmp / "want";
  fs::create_directories(want);
  for (const auto& [name, t, type] : expected) {
    std::string hex;
    for (unsigned char c : name) {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", c);
      hex += b;
    }
    spit(want / (hex + ".bin"), {reinterpret_cast<const char*>(t.bytes().data()), t.bytes().size()});
    std::string dims = std::to_string(type);
    for (int64_t d : t.shape()) dims += " " + std::to_string(d);
    spit(want / (hex + ".txt"), dims);
  }
  const Output cmp = python("onnx_check.py compare " + model.string() + " " + want.string());
  EXPECT_EQ(cmp.code, 0) << cmp.out;
  const Output check = python("onnx_check.py check " + model.string());
  ASSERT_EQ(check.code, 0) << check.out;
  EXPECT_TRUE(json::parse(check.out)["nodes"].empty());
  EXPECT_EQ(cpp_check(model), "");
  expect_same_document(doc, ckpt::read_document(model));
}

// A spec the graph cannot express (here: its parameters are not in model/state) still gives a
// valid model holding everything, and says why it has no graph.
TEST(OnnxExport, NoGraphWhenTheSpecDoesNotFitAndTheReasonIsRecorded) {
  TempDir tmp;
  ckpt::Checkpoint c;
  c.model_spec = ckpt::train::Model::mlp_spec(4, {3}, 2);
  c.model_state.add_tensor("fc1.weight", ckpt::Tensor::empty(ckpt::DType::f32, {3, 4}));
  const fs::path model = tmp / "partial.onnx";
  ckpt::save(c, model, onnx_save());
  const Output check = python("onnx_check.py check " + model.string());
  ASSERT_EQ(check.code, 0) << check.out;
  const json info = json::parse(check.out);
  EXPECT_TRUE(info["nodes"].empty());
  EXPECT_EQ(info["metadata"]["ckpt.graph"], "none: model/state has no \"fc1.bias\"");
  EXPECT_EQ(cpp_check(model), "");
  const ckpt::Checkpoint back = ckpt::load(model);
  EXPECT_TRUE(ckpt::diff_documents(back.model_spec, c.model_spec).identical());
}

// ckpt convert to and from onnx loses nothing; verify checks the hashes through the plugin.
TEST(OnnxExport, ConvertsBothWaysWithoutLoss) {
  TempDir tmp;
  const fs::path a = train_small(tmp / "run", R"({"type": "convnet"})", "msgpack");
  const fs::path onnx = tmp / "a.onnx", back = tmp / "b.msgpack";
  Output r = ckpt_cli("convert " + a.string() + " " + onnx.string());
  ASSERT_EQ(r.code, 0) << r.out;
  r = ckpt_cli("verify " + onnx.string());
  EXPECT_EQ(r.code, 0) << r.out;
  r = ckpt_cli("convert " + onnx.string() + " " + back.string());
  ASSERT_EQ(r.code, 0) << r.out;
  expect_same_document(ckpt::read_document(a), ckpt::read_document(back));
  EXPECT_EQ(cpp_check(onnx), "");
}
