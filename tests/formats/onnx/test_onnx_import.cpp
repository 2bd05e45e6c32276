// ONNX models other tools wrote: torch.onnx.export's files import with their state dict names
// and predict what torch predicts; hand-built graphs cover typed data fields, Reshape as
// flatten, and graphs the spec cannot express.
#include "onnx_test_support.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include <cstring>

using namespace onnx_test;
using nlohmann::json;

namespace {

class TorchExport : public ::testing::TestWithParam<const char*> {};

onnx::TensorProto* add_initializer(onnx::GraphProto& g, const std::string& name, int type, std::vector<int64_t> dims) {
  onnx::TensorProto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  return t;
}

void add_value(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* where, const std::string& name,
               std::vector<int64_t> dims) {
  onnx::ValueInfoProto* v = where->Add();
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) {
    if (d < 0) t->mutable_shape()->add_dim()->set_dim_param("N");
    else t->mutable_shape()->add_dim()->set_dim_value(d);
  }
}

onnx::ModelProto model_of(onnx::GraphProto g, int opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name("test-builder");
  m.set_producer_version("1");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  *m.mutable_graph() = std::move(g);
  return m;
}

void save_proto(const onnx::ModelProto& m, const fs::path& p) { spit(p, m.SerializeAsString()); }

}  // namespace

TEST_P(TorchExport, ImportsWithItsNamesAndPredictsLikeTorch) {
  const std::string kind = GetParam();
  TempDir tmp;
  write_test_images(tmp / "x.f32", 100);
  const fs::path model = tmp / (kind + ".onnx");
  const Output torch = python("torch_export.py " + kind + " " + model.string() + " " + (tmp / "x.f32").string() + " 100");
  ASSERT_EQ(torch.code, 0) << torch.out;
  // torch prints warnings before its JSON line.
  const std::string last_line = last_json_line(torch.out);
  const json expected = json::parse(last_line);

  const ckpt::Checkpoint c = ckpt::load(model);
  ASSERT_FALSE(c.model_spec.empty()) << "no spec rebuilt: "
                                     << ckpt::value_to_string(*ckpt::read_document(model).find_group_path("extra/onnx")->attribute("spec"));
  size_t names = 0;
  for (const auto& [name, shape] : expected["state"].items()) {
    const ckpt::Tensor* t = c.model_state.find_tensor(name);
    ASSERT_NE(t, nullptr) << "the state dict lacks " << name;
    EXPECT_EQ(t->shape(), shape.get<ckpt::Shape>()) << name;
    ++names;
  }
  EXPECT_EQ(c.model_state.children().size(), names) << "the state dict holds exactly torch's state_dict";
  EXPECT_NE(c.producer.find("pytorch"), std::string::npos) << c.producer;

  const Output predict = ckpt_cli("predict " + model.string() + " --images 100");
  ASSERT_EQ(predict.code, 0) << predict.out;
  const double diff = max_abs_diff(parse_rows(predict.out), parse_json_rows(last_line));
  std::printf("%s: max |ckpt predict - torch| over 100x10 outputs = %.3g\n", kind.c_str(), diff);
  EXPECT_LE(diff, 1e-5);
  const Output eval = ckpt_cli("eval " + model.string() + " --limit 100");
  EXPECT_EQ(eval.code, 0) << eval.out;
  EXPECT_NE(eval.out.find("test accuracy"), std::string::npos) << eval.out;
}

INSTANTIATE_TEST_SUITE_P(Onnx, TorchExport, ::testing::Values("mlp", "convnet"),
                         [](const auto& info) { return std::string(info.param); });

// Elements in the typed fields (float_data, int32_data, ...) rather than raw_data, packed as
// protobuf writes them and unpacked in a second graph field (protobuf merges the two).
TEST(OnnxImport, TypedDataFieldsAreDecoded) {
  TempDir tmp;
  onnx::GraphProto g;
  g.set_name("typed");
  auto* f = add_initializer(g, "f32", onnx::TensorProto_DataType_FLOAT, {2, 2});
  for (float v : {1.5f, -2.0f, 0.0f, 3.25f}) f->add_float_data(v);
  auto* d = add_initializer(g, "f64", onnx::TensorProto_DataType_DOUBLE, {3});
  for (double v : {1e300, -0.5, 2.0}) d->add_double_data(v);
  auto* i8 = add_initializer(g, "i8", onnx::TensorProto_DataType_INT8, {3});
  for (int v : {-128, 0, 127}) i8->add_int32_data(v);
  auto* u8 = add_initializer(g, "u8", onnx::TensorProto_DataType_UINT8, {2});
  for (int v : {255, 1}) u8->add_int32_data(v);
  auto* i16 = add_initializer(g, "i16", onnx::TensorProto_DataType_INT16, {2});
  for (int v : {-30000, 12345}) i16->add_int32_data(v);
  auto* i32 = add_initializer(g, "i32", onnx::TensorProto_DataType_INT32, {2});
  for (int v : {-2000000000, 7}) i32->add_int32_data(v);
  auto* b = add_initializer(g, "bool", onnx::TensorProto_DataType_BOOL, {3});
  for (int v : {1, 0, 1}) b->add_int32_data(v);
  auto* h = add_initializer(g, "f16", onnx::TensorProto_DataType_FLOAT16, {2});
  for (int v : {0x3c00, 0xc000}) h->add_int32_data(v);  // 1.0, -2.0
  auto* bf = add_initializer(g, "bf16", onnx::TensorProto_DataType_BFLOAT16, {1});
  bf->add_int32_data(0x3fc0);  // 1.5
  auto* i64 = add_initializer(g, "i64", onnx::TensorProto_DataType_INT64, {2});
  for (int64_t v : {INT64_MIN, int64_t{42}}) i64->add_int64_data(v);
  auto* u16 = add_initializer(g, "u16", onnx::TensorProto_DataType_UINT16, {2});
  for (int v : {65535, 9}) u16->add_int32_data(v);
  auto* u32 = add_initializer(g, "u32", onnx::TensorProto_DataType_UINT32, {2});
  for (uint64_t v : {uint64_t{4294967295u}, uint64_t{3}}) u32->add_uint64_data(v);
  auto* u64 = add_initializer(g, "u64", onnx::TensorProto_DataType_UINT64, {2});
  for (uint64_t v : {~uint64_t{0}, uint64_t{1} << 63}) u64->add_uint64_data(v);
  auto* c64 = add_initializer(g, "c64", onnx::TensorProto_DataType_COMPLEX64, {2});
  for (float v : {1.0f, -2.0f, 0.5f, 4.0f}) c64->add_float_data(v);  // (1-2i), (0.5+4i)
  auto* c128 = add_initializer(g, "c128", onnx::TensorProto_DataType_COMPLEX128, {1});
  for (double v : {1e300, -0.25}) c128->add_double_data(v);
  // FLOAT8E4M3FN (17), newer than the generated enum, as int32_data bits: 1.0 and -448.
  auto* f8 = add_initializer(g, "f8", onnx::TensorProto_DataType_UNDEFINED, {2});
  f8->set_data_type(17);
  for (int v : {0x38, 0xfe}) f8->add_int32_data(v);
  // FLOAT8E4M3FNUZ (18): a type ckpt has no dtype for.
  auto* fnuz = add_initializer(g, "fnuz", onnx::TensorProto_DataType_UNDEFINED, {1});
  fnuz->set_data_type(18);
  fnuz->set_raw_data(std::string(1, '\x40'));
  std::string bytes = model_of(g).SerializeAsString();
  // A second graph field with one initializer whose three floats are unpacked (fixed32 each).
  std::string tensor = std::string("\x08\x03\x10\x01\x42\x08", 6) + "unpacked";
  for (float v : {0.25f, -1.0f, 8.0f}) {
    tensor += '\x25';
    tensor.append(reinterpret_cast<const char*>(&v), 4);
  }
  std::string graph = "\x2a" + std::string(1, static_cast<char>(tensor.size())) + tensor;
  bytes += "\x3a" + std::string(1, static_cast<char>(graph.size())) + graph;
  const fs::path p = tmp / "typed.onnx";
  spit(p, bytes);

  const ckpt::Document doc = ckpt::read_document(p);
  const ckpt::Group& state = *doc.find_group_path("model/state");
  auto values = [&](const char* name, auto zero) {
    const ckpt::Tensor* t = state.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    std::vector<decltype(zero)> v(t ? t->numel() : 0);
    if (t) std::memcpy(v.data(), t->bytes().data(), t->nbytes());
    return v;
  };
  EXPECT_EQ(values("f32", 0.0f), (std::vector<float>{1.5f, -2.0f, 0.0f, 3.25f}));
  EXPECT_EQ(values("f64", 0.0), (std::vector<double>{1e300, -0.5, 2.0}));
  EXPECT_EQ(values("i8", int8_t{}), (std::vector<int8_t>{-128, 0, 127}));
  EXPECT_EQ(values("u8", uint8_t{}), (std::vector<uint8_t>{255, 1}));
  EXPECT_EQ(values("i16", int16_t{}), (std::vector<int16_t>{-30000, 12345}));
  EXPECT_EQ(values("i32", int32_t{}), (std::vector<int32_t>{-2000000000, 7}));
  EXPECT_EQ(values("bool", uint8_t{}), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(values("f16", uint16_t{}), (std::vector<uint16_t>{0x3c00, 0xc000}));
  EXPECT_EQ(values("bf16", uint16_t{}), (std::vector<uint16_t>{0x3fc0}));
  EXPECT_EQ(values("i64", int64_t{}), (std::vector<int64_t>{INT64_MIN, 42}));
  EXPECT_EQ(values("unpacked", 0.0f), (std::vector<float>{0.25f, -1.0f, 8.0f}));
  EXPECT_EQ(values("u16", uint16_t{}), (std::vector<uint16_t>{65535, 9}));
  EXPECT_EQ(values("u32", uint32_t{}), (std::vector<uint32_t>{4294967295u, 3}));
  EXPECT_EQ(values("u64", uint64_t{}), (std::vector<uint64_t>{~uint64_t{0}, uint64_t{1} << 63}));
  ASSERT_NE(state.find_tensor("c64"), nullptr);
  EXPECT_EQ(state.find_tensor("c64")->dtype(), ckpt::DType::c64);
  std::vector<float> c64_back(4);
  std::memcpy(c64_back.data(), state.find_tensor("c64")->bytes().data(), 16);
  EXPECT_EQ(c64_back, (std::vector<float>{1.0f, -2.0f, 0.5f, 4.0f}));
  ASSERT_NE(state.find_tensor("c128"), nullptr);
  std::vector<double> c128_back(2);
  std::memcpy(c128_back.data(), state.find_tensor("c128")->bytes().data(), 16);
  EXPECT_EQ(c128_back, (std::vector<double>{1e300, -0.25}));
  ASSERT_NE(state.find_tensor("f8"), nullptr);
  EXPECT_EQ(state.find_tensor("f8")->dtype(), ckpt::DType::f8_e4m3fn);
  EXPECT_EQ(values("f8", uint8_t{}), (std::vector<uint8_t>{0x38, 0xfe}));
  EXPECT_EQ(state.find_tensor("fnuz"), nullptr) << "FLOAT8E4M3FNUZ has no ckpt dtype";
  const auto skipped = std::get<std::vector<std::string>>(*doc.find_group_path("extra/onnx")->attribute("skipped"));
  EXPECT_EQ(skipped, (std::vector<std::string>{"fnuz: FLOAT8E4M3FNUZ has no ckpt dtype"}));
  // Mapped views of typed tensors are decoded copies, equal to what read gives.
  auto reader = ckpt::open(p);
  EXPECT_TRUE(reader->map("model/state/f64")->bit_equal(reader->read("model/state/f64")));
}

// A graph the spec expresses with a Reshape (shape from an initializer) as its flatten: the
// spec is rebuilt, the shape goes to extra/onnx/constants, and ckpt predict matches ONNX
// Runtime on the same file.
TEST(OnnxImport, ReshapeToFlattenIsAFlattenLayer) {
  TempDir tmp;
  onnx::GraphProto g;
  g.set_name("convnet_with_reshape");
  add_value(g.mutable_input(), "x", {-1, 1, 28, 28});
  add_value(g.mutable_output(), "y", {-1, 4});
  uint32_t seed = 12345;
  auto fill = [&](onnx::TensorProto* t, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      seed = seed * 1664525u + 1013904223u;
      t->add_float_data(static_cast<float>(seed >> 8) / static_cast<float>(1 << 24) - 0.5f);
    }
  };
  fill(add_initializer(g, "conv.weight", onnx::TensorProto_DataType_FLOAT, {3, 1, 3, 3}), 27);
  fill(add_initializer(g, "conv.bias", onnx::TensorProto_DataType_FLOAT, {3}), 3);
  auto* shape = add_initializer(g, "flat_shape", onnx::TensorProto_DataType_INT64, {2});
  shape->add_int64_data(0);
  shape->add_int64_data(-1);
  fill(add_initializer(g, "head.weight", onnx::TensorProto_DataType_FLOAT, {4, 3 * 13 * 13}), 4 * 3 * 13 * 13);
  auto node = [&](const char* op, std::vector<std::string> in, const char* out) {
    onnx::NodeProto* n = g.add_node();
    n->set_op_type(op);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  };
  auto* conv = node("Conv", {"x", "conv.weight", "conv.bias"}, "c");
  auto* pads = conv->add_attribute();
  pads->set_name("strides");
  pads->set_type(onnx::AttributeProto::INTS);
  pads->add_ints(2);
  pads->add_ints(2);
  node("Relu", {"c"}, "r");
  node("Reshape", {"r", "flat_shape"}, "f");
  auto* gemm = node("Gemm", {"f", "head.weight"}, "y");
  auto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  const fs::path p = tmp / "reshape.onnx";
  save_proto(model_of(g), p);

  const ckpt::Document doc = ckpt::read_document(p);
  ASSERT_NE(doc.find_group_path("model/spec"), nullptr)
      << ckpt::value_to_string(*doc.find_group_path("extra/onnx")->attribute("spec"));
  const auto layers = std::get<std::vector<std::string>>(*doc.find_group_path("model/spec")->attribute("layers"));
  EXPECT_EQ(layers, (std::vector<std::string>{"conv", "relu1", "flatten1", "head"}));
  EXPECT_EQ(*doc.find_group_path("model/spec/conv")->attribute("stride"), ckpt::Value(int64_t{2}));
  EXPECT_EQ(*doc.find_group_path("model/spec/head")->attribute("bias"), ckpt::Value(false));
  EXPECT_NE(doc.find_tensor_path("extra/onnx/constants/flat_shape"), nullptr);
  EXPECT_EQ(doc.find_tensor_path("model/state/flat_shape"), nullptr);

  write_test_images(tmp / "x.f32", 20);
  const Output ort = node_ort(p.string() + " " + (tmp / "x.f32").string() + " 20 1 28 28");
  ASSERT_EQ(ort.code, 0) << ort.out;
  const Output predict = ckpt_cli("predict " + p.string() + " --images 20");
  ASSERT_EQ(predict.code, 0) << predict.out;
  EXPECT_LE(max_abs_diff(parse_rows(predict.out), parse_json_rows(last_json_line(ort.out))), 1e-5);
}

// A graph outside what the spec expresses still gives its initializers, under escaped names,
// and says why there is no spec; eval then says the model cannot be rebuilt.
TEST(OnnxImport, OtherGraphsGiveTheStateDictAndTheReason) {
  TempDir tmp;
  onnx::GraphProto g;
  g.set_name("adder");
  add_value(g.mutable_input(), "x", {-1, 3});
  add_value(g.mutable_output(), "y", {-1, 3});
  auto* w = add_initializer(g, "/weights/w", onnx::TensorProto_DataType_FLOAT, {3});
  for (float v : {1.0f, 2.0f, 3.0f}) w->add_float_data(v);
  onnx::NodeProto* n = g.add_node();
  n->set_op_type("Add");
  n->set_name("add");
  n->add_input("x");
  n->add_input("/weights/w");
  n->add_output("y");
  onnx::ModelProto m = model_of(g);
  auto* prop = m.add_metadata_props();
  prop->set_key("author");
  prop->set_value("someone");
  const fs::path p = tmp / "adder.onnx";
  save_proto(m, p);

  const ckpt::Document doc = ckpt::read_document(p);
  EXPECT_NE(doc.find_tensor_path("model/state/%2Fweights%2Fw"), nullptr);
  EXPECT_EQ(doc.find_group_path("model/spec"), nullptr);
  EXPECT_EQ(*doc.find_group_path("extra/onnx")->attribute("spec"),
            ckpt::Value(std::string("not rebuilt: node 0 (Add \"add\"): operator Add has no layer in the spec")));
  EXPECT_EQ(*doc.find_group_path("meta/user")->attribute("author"), ckpt::Value(std::string("someone")));
  EXPECT_EQ(*doc.find_group_path("meta")->attribute("producer"), ckpt::Value(std::string("test-builder 1")));
  const Output eval = ckpt_cli("eval " + p.string() + " --limit 10");
  EXPECT_EQ(eval.code, 2) << eval.out;
  EXPECT_NE(eval.out.find("no model/spec"), std::string::npos) << eval.out;
}
