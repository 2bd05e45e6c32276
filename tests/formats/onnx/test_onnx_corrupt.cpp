// Damaged and inconsistent files: every one is a typed ckpt error naming the file, the byte
// offset or the initializer, and what was wrong; none crashes or allocates what a length in
// the file claims.
#include "onnx_test_support.hpp"

#include <ckpt/errors.hpp>

#include <onnx/onnx_pb.h>

using namespace onnx_test;

namespace {

template <class E = ckpt::FormatError>
std::string error_of(const fs::path& p, const ckpt::LoadOptions& options = {}) {
  try {
    ckpt::read_document(p, options);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected " << typeid(e).name() << ": " << e.what();
    return {};
  }
  ADD_FAILURE() << p << " was read";
  return {};
}

onnx::ModelProto small_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  m.mutable_graph()->set_name("g");
  onnx::TensorProto* t = m.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  t->add_dims(4);
  t->set_raw_data(std::string(16, '\x01'));
  return m;
}

// A checkpoint ckpt wrote, as the generated classes see it.
onnx::ModelProto ours(const fs::path& p) {
  ckpt::Checkpoint c;
  c.model_state.add_tensor("fc.weight", ckpt::Tensor::from<float>(ckpt::DType::f32, {2, 2}, {1, 2, 3, 4}));
  c.optimizer.set("type", "sgd");
  ckpt::save(c, p, onnx_save());
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(slurp(p)));
  return m;
}

void expect_in(const std::string& what, std::initializer_list<const char*> parts) {
  for (const char* part : parts) EXPECT_NE(what.find(part), std::string::npos) << "no \"" << part << "\" in: " << what;
}

}  // namespace

TEST(OnnxCorrupt, RawDataOfTheWrongSize) {
  TempDir tmp;
  onnx::ModelProto m = small_model();
  m.mutable_graph()->mutable_initializer(0)->set_raw_data(std::string(12, '\0'));
  spit(tmp / "m.onnx", m.SerializeAsString());
  expect_in(error_of(tmp / "m.onnx"), {"m.onnx", "at byte", "initializer[0] \"w\"", "raw_data holds 12 bytes but dims [4] of FLOAT need 16"});
}

TEST(OnnxCorrupt, LengthsPastTheEndAreCaughtBeforeAnyAllocation) {
  TempDir tmp;
  const std::string bytes = small_model().SerializeAsString();
  // Cut inside the raw_data: the graph's and the tensor's lengths now run past the end.
  spit(tmp / "cut.onnx", bytes.substr(0, bytes.size() - 20));
  expect_in(error_of(tmp / "cut.onnx", onnx_load()), {"cut.onnx", "declares", "remain"});
  // A huge length where the graph starts: ir_version (2 bytes), then tag 0x3a and its length.
  std::string huge = bytes;
  const size_t graph = huge.find('\x3a');
  ASSERT_NE(graph, std::string::npos);
  huge.replace(graph + 1, 1, "\xff\xff\xff\xff\x0f");
  spit(tmp / "huge.onnx", huge);
  expect_in(error_of(tmp / "huge.onnx", onnx_load()), {"huge.onnx", "graph declares 4294967295 bytes"});
  // Without a format named, identify() already sees that the lengths do not fit the file.
  expect_in(error_of(tmp / "huge.onnx"), {"huge.onnx", "is in none of the known formats"});
}

TEST(OnnxCorrupt, NegativeDimensionsAndMissingDataAreRefused) {
  TempDir tmp;
  onnx::ModelProto m = small_model();
  m.mutable_graph()->mutable_initializer(0)->set_dims(0, -4);
  spit(tmp / "neg.onnx", m.SerializeAsString());
  expect_in(error_of(tmp / "neg.onnx"), {"neg.onnx", "negative dimension", "[-4]"});
  m = small_model();
  m.mutable_graph()->mutable_initializer(0)->clear_raw_data();
  spit(tmp / "nodata.onnx", m.SerializeAsString());
  expect_in(error_of(tmp / "nodata.onnx"), {"\"w\"", "4 elements but no data"});
  m = small_model();
  m.mutable_graph()->mutable_initializer(0)->add_float_data(1.0f);
  spit(tmp / "both.onnx", m.SerializeAsString());
  expect_in(error_of(tmp / "both.onnx"), {"\"w\"", "raw_data and float_data"});
}

TEST(OnnxCorrupt, NotAModel) {
  TempDir tmp;
  onnx::ModelProto m = small_model();
  m.clear_graph();
  spit(tmp / "nograph.onnx", m.SerializeAsString());
  expect_in(error_of(tmp / "nograph.onnx"), {"nograph.onnx", "no graph"});
  spit(tmp / "text.onnx", "\x08\x08 this is not protobuf at all");
  expect_in(error_of(tmp / "text.onnx", onnx_load()), {"text.onnx", "at byte"});
}

TEST(OnnxCorrupt, CkptFilesWhoseDocumentDisagreesWithTheGraph) {
  TempDir tmp;
  onnx::ModelProto m = ours(tmp / "a.onnx");
  auto document = [&](onnx::ModelProto& model) -> std::string* {
    for (auto& p : *model.mutable_metadata_props())
      if (p.key() == "ckpt.document") return p.mutable_value();
    return nullptr;
  };
  ASSERT_NE(document(m), nullptr);

  onnx::ModelProto bad_json = m;
  document(bad_json)->insert(10, "{");
  spit(tmp / "json.onnx", bad_json.SerializeAsString());
  expect_in(error_of(tmp / "json.onnx"), {"json.onnx", "metadata ckpt.document", "not valid JSON"});

  onnx::ModelProto missing = m;
  missing.mutable_graph()->mutable_initializer()->RemoveLast();
  spit(tmp / "missing.onnx", missing.SerializeAsString());
  expect_in(error_of(tmp / "missing.onnx"), {"which the graph does not hold", "layout=onnx"});
  // Read as a plain ONNX model, it is whatever initializers are left.
  const ckpt::Document plain = ckpt::read_document(tmp / "missing.onnx", onnx_load({{"layout", "onnx"}}));
  EXPECT_NE(plain.find_group_path("model/state"), nullptr);

  onnx::ModelProto no_document = m;
  no_document.mutable_metadata_props()->RemoveLast();
  spit(tmp / "nodoc.onnx", no_document.SerializeAsString());
  expect_in(error_of(tmp / "nodoc.onnx"), {"written by ckpt", "ckpt.document metadata is missing"});

  onnx::ModelProto retyped = m;
  retyped.mutable_graph()->mutable_initializer(0)->set_data_type(onnx::TensorProto_DataType_INT32);
  spit(tmp / "retyped.onnx", retyped.SerializeAsString());
  expect_in(error_of(tmp / "retyped.onnx"), {"initializer \"fc.weight\" is INT32 [2, 2] but the document says f32 [2, 2]"});

  expect_in(error_of<ckpt::UsageError>(tmp / "a.onnx", onnx_load({{"layuot", "onnx"}})), {"unknown option 'layuot'"});
}

// A file cut anywhere is refused, never read as a smaller document: the document entry, the
// last thing in the file, is missing, or a length runs past the end.
TEST(OnnxCorrupt, EveryTruncationIsRefused) {
  TempDir tmp;
  ours(tmp / "a.onnx");
  const std::string bytes = slurp(tmp / "a.onnx");
  int refused = 0;
  for (size_t at = 0; at < bytes.size(); at += std::max<size_t>(1, bytes.size() / 300)) {
    spit(tmp / "cut.onnx", bytes.substr(0, at));
    try {
      ckpt::read_document(tmp / "cut.onnx", onnx_load());
      ADD_FAILURE() << "cut at " << at << " of " << bytes.size() << " was read";
    } catch (const ckpt::Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 250);
}

// The writer never makes a model its reader refuses: one initializer past the reader's bound
// (model_scan.hpp) is refused before anything is committed.
TEST(OnnxLimits, TheWriterRefusesMoreInitializersThanTheReaderTakes) {
  TempDir tmp;
  ckpt::Document d;
  constexpr int kGroups = 1001, kPerGroup = 1000;  // 1,001,000 tensors, one f32 each
  for (int g = 0; g < kGroups; ++g) {
    ckpt::Group& group = d.add_group("g" + std::to_string(g));
    for (int t = 0; t < kPerGroup; ++t) group.add_tensor("t" + std::to_string(t), ckpt::Tensor::from<float>(ckpt::DType::f32, {1}, {1.0f}));
  }
  const fs::path p = tmp.path / "many.onnx";
  try {
    ckpt::write_document(d, p, onnx_save());
    ADD_FAILURE() << "a model of 1001000 initializers was written";
  } catch (const ckpt::LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("at most 1000000 initializers"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(p));
}
