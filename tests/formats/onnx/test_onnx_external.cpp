// External data: tensors in <model>.<xxh3>.data beside the model, page-aligned and mapped in
// place; what ONNX's tools and ONNX Runtime read; saves that keep the previous model and its
// data whole when killed; and locations that would leave the model's folder, which are refused.
#include "onnx_test_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/train/model.hpp>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include <chrono>
#include <csignal>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

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

// The data files beside `model` (named "<model>.<16 hex digits>.data").
std::vector<std::string> data_files(const fs::path& model) {
  const std::string stem = model.filename().string() + ".";
  std::vector<std::string> out;
  for (const auto& f : files_in(model.parent_path())) {
    if (f.size() != stem.size() + 16 + 5 || f.rfind(stem, 0) != 0 || !f.ends_with(".data")) continue;
    const std::string tag = f.substr(stem.size(), 16);
    if (tag.find_first_not_of("0123456789abcdef") == std::string::npos) out.push_back(f);
  }
  return out;
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
  const std::vector<std::string> data = data_files(model);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(files_in(tmp.path), (std::vector<std::string>{"net.onnx", data[0]})) << "no temporaries left";

  size_t external = 0;
  const onnx::ModelProto proto = parse(model);
  for (const auto& t : proto.graph().initializer()) {
    ASSERT_EQ(t.data_location(), onnx::TensorProto_DataLocation_EXTERNAL) << t.name();
    for (const auto& e : t.external_data()) {
      if (e.key() == "location") {
        EXPECT_EQ(e.value(), data[0]);
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
  const std::vector<std::string> data = data_files(model);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(files_in(tmp.path), (std::vector<std::string>{"big.onnx", data[0]}));
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

// A data file of another save (files mixed by hand) is caught when the model is opened.
TEST(OnnxExternal, ADataFileFromAnotherSaveIsAnIntegrityError) {
  TempDir tmp;
  const auto options = onnx_save({{"external_data", "always"}, {"external_threshold", "0"}});
  const fs::path model = tmp / "m.onnx";
  ckpt::save(convnet_checkpoint(1), model, options);
  ASSERT_EQ(data_files(model).size(), 1u);
  fs::copy_file(tmp / data_files(model)[0], tmp / "old.bin");
  ckpt::save(convnet_checkpoint(2), model, options);
  ASSERT_EQ(data_files(model).size(), 1u);
  fs::copy_file(tmp / "old.bin", tmp / data_files(model)[0], fs::copy_options::overwrite_existing);
  try {
    ckpt::read_document(model);
    ADD_FAILURE() << "read";
  } catch (const ckpt::IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("does not belong to"), std::string::npos) << e.what();
  }
}

// Each save's data file has a name of its own, so the committed model's is never replaced by
// another's; once the new model is in place, the earlier saves' data files go, and only those.
TEST(OnnxExternal, ACommittedSaveRemovesTheDataFilesOfEarlierSavesOnly) {
  TempDir tmp;
  const auto external = onnx_save({{"external_data", "always"}, {"external_threshold", "0"}});
  const fs::path model = tmp / "m.onnx";
  ckpt::save(convnet_checkpoint(1), model, external);
  const std::vector<std::string> first = data_files(model);
  ASSERT_EQ(first.size(), 1u);
  // Not ckpt's: a file without its header, a symlink, another model's data.
  spit(tmp / "m.onnx.data", "somebody else's bytes");
  spit(tmp / "m.onnx.00000000000000ff.data", "not ckpt's either");
  fs::create_symlink(first[0], tmp / "m.onnx.0123456789abcdef.data");
  ckpt::save(convnet_checkpoint(7), tmp / "other.onnx", external);
  const std::vector<std::string> other = data_files(tmp / "other.onnx");
  ASSERT_EQ(other.size(), 1u);

  ckpt::save(convnet_checkpoint(2), model, external);
  std::vector<std::string> second = data_files(model);
  std::erase(second, "m.onnx.00000000000000ff.data");
  std::erase(second, "m.onnx.0123456789abcdef.data");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0], first[0]);
  EXPECT_FALSE(fs::exists(tmp / first[0])) << "the first save's data stayed";
  EXPECT_TRUE(fs::exists(tmp / "m.onnx.data"));
  EXPECT_TRUE(fs::exists(tmp / "m.onnx.00000000000000ff.data"));
  EXPECT_TRUE(fs::is_symlink(tmp / "m.onnx.0123456789abcdef.data"));
  EXPECT_TRUE(fs::exists(tmp / other[0]));
  expect_same_document(ckpt::load(model, {.verify = true}).model_state, convnet_checkpoint(2).model_state);
  expect_same_document(ckpt::load(tmp / "other.onnx", {.verify = true}).model_state, convnet_checkpoint(7).model_state);

  // A save that keeps every tensor inline needs no data file: the last one goes too.
  ckpt::save(convnet_checkpoint(3), model, onnx_save());
  EXPECT_FALSE(fs::exists(tmp / second[0]));
  expect_same_document(ckpt::load(model, {.verify = true}).model_state, convnet_checkpoint(3).model_state);
}

// The data file is named by its contents: the same document gives the same two files.
TEST(OnnxExternal, TheSameDocumentGivesTheSameFilesWithExternalData) {
  TempDir tmp;
  const auto external = onnx_save({{"external_data", "always"}, {"external_threshold", "0"}});
  // One document for every save: to_document() stamps meta/created with the current second, so
  // rebuilding it per save made the models differ whenever the saves straddled a second.
  const ckpt::Document doc = convnet_checkpoint(4).to_document();
  ckpt::write_document(doc, tmp / "a.onnx", external);
  ckpt::write_document(doc, tmp / "b.onnx", external);
  const auto a = data_files(tmp / "a.onnx"), b = data_files(tmp / "b.onnx");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].substr(1), b[0].substr(1)) << "same tag";
  EXPECT_EQ(slurp(tmp / a[0]), slurp(tmp / b[0]));
  // The models differ only in the file name each location names.
  std::string ma = slurp(tmp / "a.onnx"), mb = slurp(tmp / "b.onnx");
  for (std::string* m : {&ma, &mb})
    for (const char* from : {"a.onnx.", "b.onnx."})
      for (size_t at = m->find(from); at != std::string::npos; at = m->find(from, at)) m->replace(at, 7, "x.onnx.");
  EXPECT_EQ(ma, mb);
  // Saving the same document again over itself keeps one data file, still the model's.
  ckpt::write_document(doc, tmp / "a.onnx", external);
  EXPECT_EQ(data_files(tmp / "a.onnx"), a);
  expect_same_document(ckpt::load(tmp / "a.onnx").model_state, convnet_checkpoint(4).model_state);
}

// A save killed at any moment, also between the data file's rename and the model's, leaves the
// model under its name and the data file it names as one save's pair, which loads and verifies.
TEST(OnnxExternal, SavesKilledAtRandomMomentsLeaveAWholeModelAndItsData) {
  TempDir tmp;
  const auto external = onnx_save({{"external_data", "always"}, {"external_threshold", "0"}});
  const fs::path model = tmp / "m.onnx";
  auto generation = [](int64_t g) {
    ckpt::Checkpoint c;
    std::mt19937_64 rng(static_cast<uint64_t>(g));
    for (int i = 0; i < 6; ++i) {
      ckpt::Tensor t = ckpt::Tensor::empty(ckpt::DType::f32, {512, 1024});  // 2 MiB
      auto b = t.mutable_bytes();
      for (size_t k = 0; k + 8 <= b.size(); k += 8) {
        const uint64_t x = rng();
        std::memcpy(b.data() + k, &x, 8);
      }
      c.model_state.add_tensor("w" + std::to_string(i), t);
    }
    c.trainer.set("epoch", g);
    return c;
  };
  auto save_in_child = [&](int64_t g) {
    const ckpt::Checkpoint c = generation(g);
    const pid_t pid = ::fork();
    if (pid == 0) {
      try {
        ckpt::save(c, model, external);
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    return pid;
  };
  auto loaded_generation = [&]() -> int64_t {
    const ckpt::Checkpoint c = ckpt::load(model, {.verify = true, .map = false});
    const ckpt::Value* v = c.trainer.attribute("epoch");
    return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : -1;
  };

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  int status = 0;
  ::waitpid(save_in_child(1), &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const double save_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> when(0.0, 1.2 * save_seconds);
  int64_t previous = 1;
  int killed_mid_save = 0;
  for (int k = 0; k < 12; ++k) {
    const int64_t g = previous + 1;
    const pid_t pid = save_in_child(g);
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << "kill " << k;
    int64_t got = -1;
    try {
      got = loaded_generation();
    } catch (const std::exception& e) {
      FAIL() << "kill " << k << ": the model does not load: " << e.what();
    }
    ASSERT_TRUE(got == previous || got == g) << "kill " << k << ": generation " << got;
    if (got == previous) ++killed_mid_save;
    previous = got;
    // At most this model's data file and one of a save killed after its data file's rename.
    EXPECT_LE(data_files(model).size(), 2u) << "kill " << k;
  }
  EXPECT_GT(killed_mid_save, 0) << "no kill landed inside a save";

  // A completed save leaves the model, its data file and nothing else.
  ::waitpid(save_in_child(previous + 1), &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(loaded_generation(), previous + 1);
  const std::vector<std::string> data = data_files(model);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(files_in(tmp.path), (std::vector<std::string>{"m.onnx", data[0]}));
}
