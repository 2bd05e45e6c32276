// External data: tensors in <model>.data beside the model, page-aligned and mapped in place;
// what ONNX's tools and ONNX Runtime read; and locations that would leave the model's folder,
// which are refused.
#include "onnx_test_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/train/model.hpp>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

using namespace onnx_test;
using nlohmann::json;

namespace {

ckpt::Checkpoint convnet_checkpoint(uint64_t seed) {
  auto model = ckpt::train::Model::from_spec(ckpt::train::Model::convnet_spec(), seed);
  ckpt::Checkpoint c;
  c.model_spec = model->spec();
  c.model_state = model->state_dict();
  // Deep copies: the model's parameters go away with it.
  for (auto& node : c.model_state.children()) node.tensor() = node.tensor().clone();
  c.trainer.set("epoch", 3);
  return c;
}

onnx::ModelProto parse(const fs::path& p) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(slurp(p)));
  return m;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// An external initializer of 4 floats at `location`, offset `offset`.
void write_external_model(const fs::path& p, const std::string& location, uint64_t offset = 0) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("test-builder");
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("external");
  onnx::TensorProto* t = g->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  t->add_dims(4);
  t->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto entry = [&](const char* k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  entry("location", location);
  entry("offset", std::to_string(offset));
  entry("length", "16");
  spit(p, m.SerializeAsString());
}

const std::string kSixteenBytes = std::string("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40", 16);

}  // namespace

TEST(OnnxExternal, TensorsGoToAlignedExternalDataThatOnnxToolsAndRuntimeRead) {
  TempDir tmp;
  const fs::path model = tmp / "net.onnx";
  const ckpt::Checkpoint c = convnet_checkpoint(5);
  ckpt::save(c, model, onnx_save({{"external_data", "always"}, {"external_threshold", "0"}}));
  EXPECT_EQ(files_in(tmp.path), (std::vector<std::string>{"net.onnx", "net.onnx.data"})) << "no temporaries left";

  size_t external = 0;
  const onnx::ModelProto proto = parse(model);
  for (const auto& t : proto.graph().initializer()) {
    ASSERT_EQ(t.data_location(), onnx::TensorProto_DataLocation_EXTERNAL) << t.name();
    for (const auto& e : t.external_data()) {
      if (e.key() == "location") {
        EXPECT_EQ(e.value(), "net.onnx.data");
      } else if (e.key() == "offset") {
        EXPECT_EQ(std::stoull(e.value()) % 4096, 0u) << t.name() << " is not page-aligned";
      }
    }
    ++external;
  }
  EXPECT_EQ(external, c.model_state.children().size()) << "every tensor goes out";

  EXPECT_EQ(cpp_check(model), "");
  const Output check = python("onnx_check.py check " + model.string());
  ASSERT_EQ(check.code, 0) << check.out;
  write_test_images(tmp / "x.f32", 100);
  const Output ort = node_ort(model.string() + " " + (tmp / "x.f32").string() + " 100 1 28 28");
  ASSERT_EQ(ort.code, 0) << ort.out;
  const Output predict = ckpt_cli("predict " + model.string() + " --images 100");
  ASSERT_EQ(predict.code, 0) << predict.out;
  EXPECT_LE(max_abs_diff(parse_rows(predict.out), parse_json_rows(last_json_line(ort.out))), 1e-5);

  // Read back whole, and the tensors are views into the mapped data file.
  const ckpt::Checkpoint back = ckpt::load(model);
  expect_same_document(back.model_state, c.model_state);
  auto reader = ckpt::open(model);
  const auto view = reader->map("model/state/conv1.weight");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->storage_kind(), ckpt::StorageKind::mapped);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(view->bytes().data()) % 4096, 0u);
}

TEST(OnnxExternal, AutomaticModeMovesTensorsOutOnlyPastTheLimit) {
  TempDir tmp;
  ckpt::Document doc;
  for (int i = 0; i < 4; ++i) {
    ckpt::Tensor t = ckpt::Tensor::empty(ckpt::DType::f32, {300, 256});  // 300 KiB each
    auto b = t.mutable_bytes();
    for (size_t k = 0; k < b.size(); ++k) b[k] = static_cast<std::byte>(k * 31 + static_cast<size_t>(i));
    doc.add_tensor("w" + std::to_string(i), t);
  }
  const fs::path model = tmp / "big.onnx";
  ckpt::write_document(doc, model, onnx_save({{"max_inline_bytes", "700000"}}));
  std::vector<bool> out;
  const onnx::ModelProto proto = parse(model);
  for (const auto& t : proto.graph().initializer())
    out.push_back(t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL);
  EXPECT_EQ(out, (std::vector<bool>{false, false, true, true}));
  EXPECT_LT(fs::file_size(model), 700000u);
  expect_same_document(doc, ckpt::read_document(model));
  EXPECT_EQ(cpp_check(model), "");

  // "never" refuses instead, and leaves nothing behind.
  const fs::path refused = tmp / "refused.onnx";
  EXPECT_THROW(ckpt::write_document(doc, refused, onnx_save({{"external_data", "never"}, {"max_inline_bytes", "700000"}})),
               ckpt::LimitError);
  EXPECT_EQ(files_in(tmp.path), (std::vector<std::string>{"big.onnx", "big.onnx.data"}));
}

TEST(OnnxExternal, AnAbandonedSaveLeavesNoDataFile) {
  TempDir tmp;
  const ckpt::Format format = ckpt::Registry::global().get("onnx");
  {
    auto w = format.open_writer(tmp / "x.onnx", {{"external_data", "always"}, {"external_threshold", "0"}});
    w->begin_group("", 0, 2);
    const std::vector<float> a{1, 2};
    w->tensor("a", ckpt::DType::f32, {2}, std::as_bytes(std::span(a)));
  }  // destroyed without finish
  // The host removes the model file it gave the plugin; the data file is the plugin's.
  for (const auto& name : files_in(tmp.path)) EXPECT_EQ(name.find(".data"), std::string::npos) << name;
}

TEST(OnnxExternal, LocationsOutsideTheModelsFolderAreRefused) {
  TempDir tmp;
  const fs::path inside = tmp / "models", outside = tmp / "secret";
  fs::create_directories(inside / "sub");
  fs::create_directories(outside);
  spit(outside / "data.bin", kSixteenBytes);
  spit(inside / "data.bin", kSixteenBytes);
  spit(inside / "sub" / "data.bin", kSixteenBytes);
  fs::create_symlink(outside / "data.bin", inside / "link_out.bin");
  fs::create_symlink("../secret/data.bin", inside / "relative_link_out.bin");
  fs::create_directory_symlink(outside, inside / "dir_out");
  fs::create_symlink("data.bin", inside / "link_in.bin");
  fs::create_symlink("../data.bin", inside / "sub" / "link_up_but_inside.bin");

  const std::string refused[] = {"../secret/data.bin", (outside / "data.bin").string(), "sub/../../secret/data.bin",
                                 "link_out.bin", "relative_link_out.bin", "dir_out/data.bin", "..\\secret\\data.bin"};
  for (const std::string& location : refused) {
    SCOPED_TRACE(location);
    const fs::path p = inside / "m.onnx";
    write_external_model(p, location);
    try {
      ckpt::read_document(p);
      ADD_FAILURE() << "read";
    } catch (const ckpt::FormatError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("is refused"), std::string::npos) << what;
      EXPECT_NE(what.find("\"w\""), std::string::npos) << what;
      EXPECT_NE(what.find("m.onnx"), std::string::npos) << what;
    }
  }
  for (const std::string location : {"data.bin", "sub/data.bin", "./data.bin", "link_in.bin", "sub/link_up_but_inside.bin"}) {
    SCOPED_TRACE(location);
    const fs::path p = inside / "ok.onnx";
    write_external_model(p, location);
    const ckpt::Document doc = ckpt::read_document(p);
    const ckpt::Tensor* w = doc.find_tensor_path("model/state/w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(w->bytes().data()), 16), kSixteenBytes);
  }
}

TEST(OnnxExternal, ExternalDataPastTheFilesEndIsAFormatError) {
  TempDir tmp;
  spit(tmp / "data.bin", kSixteenBytes);
  write_external_model(tmp / "m.onnx", "data.bin", 8);
  try {
    ckpt::read_document(tmp / "m.onnx");
    ADD_FAILURE() << "read";
  } catch (const ckpt::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("runs past the end of \"data.bin\" (16 bytes)"), std::string::npos) << e.what();
  }
  write_external_model(tmp / "missing.onnx", "nothing.bin");
  EXPECT_THROW(ckpt::read_document(tmp / "missing.onnx"), ckpt::IoError);
}

// The model and its data file are renamed one after the other; a data file from another save
// (a crash between the renames, or files mixed by hand) is caught when the model is opened.
TEST(OnnxExternal, ADataFileFromAnotherSaveIsAnIntegrityError) {
  TempDir tmp;
  const auto options = onnx_save({{"external_data", "always"}, {"external_threshold", "0"}});
  const fs::path model = tmp / "m.onnx";
  ckpt::save(convnet_checkpoint(1), model, options);
  fs::copy_file(tmp / "m.onnx.data", tmp / "old.data");
  ckpt::save(convnet_checkpoint(2), model, options);
  fs::copy_file(tmp / "old.data", tmp / "m.onnx.data", fs::copy_options::overwrite_existing);
  try {
    ckpt::read_document(model);
    ADD_FAILURE() << "read";
  } catch (const ckpt::IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("does not belong to"), std::string::npos) << e.what();
  }
}
