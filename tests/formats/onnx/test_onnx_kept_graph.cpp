// A graph model/spec cannot express is kept (extra/onnx/graph) and written back: real models
// (torch.onnx.export of a residual block and of torchvision's resnet18, an onnx.helper graph of
// BatchNormalization, Concat and Add) go onnx -> msgpack -> onnx and onnx -> hdf5 -> onnx, pass
// python3-onnx's checker, and give ONNX Runtime exactly the original's outputs. A graph that
// cannot be kept, and a conversion to a format that cannot hold the group, name the loss.
#include "onnx_test_support.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>

using namespace onnx_test;

namespace {

// The models kept_graphs.py makes, made once for every test here.
class OnnxKeptGraph : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const Output made = python("kept_graphs.py " + dir_->path.string());
    ASSERT_EQ(made.code, 0) << made.out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path file(const std::string& name) { return dir_->path / name; }

  // ONNX Runtime's first output for the model's own test input, as the JSON it prints.
  static std::string run_ort(const std::string& model, const std::string& name) {
    const Output r = node_ort(file(model).string() + " " + file(name + ".f32").string() + " " + slurp(file(name + ".shape")));
    EXPECT_EQ(r.code, 0) << model << ": " << r.out;
    return last_json_line(r.out);
  }

  static void convert(const std::string& from, const std::string& to) {
    const Output r = ckpt_cli("convert " + file(from).string() + " " + file(to).string());
    ASSERT_EQ(r.code, 0) << from << " -> " << to << ": " << r.out;
  }

  static TempDir* dir_;
};
TempDir* OnnxKeptGraph::dir_ = nullptr;

TEST_F(OnnxKeptGraph, RoundTripsThroughMsgpackAndHdf5AndRunsAlike) {
  for (const std::string name : {"residual", "resnet18", "helper", "constant"}) {
    SCOPED_TRACE(name);
    const ckpt::Document doc = ckpt::read_document(file(name + ".onnx"));
    EXPECT_EQ(doc.find_group_path("model/spec"), nullptr);
    const ckpt::Group* kept = doc.find_group_path("extra/onnx/graph");
    ASSERT_NE(kept, nullptr);
    EXPECT_EQ(doc.find_group_path("extra/onnx")->attribute("graph_lost"), nullptr);
    EXPECT_EQ(doc.find("onnx.graph"), nullptr);  // the plugin's name is never a document's

    convert(name + ".onnx", name + ".msgpack");
    convert(name + ".msgpack", name + ".msgpack.onnx");
    convert(name + ".onnx", name + ".h5");
    convert(name + ".h5", name + ".h5.onnx");

    const std::string original = run_ort(name + ".onnx", name);
    ASSERT_NE(original, "");
    const auto parsed = nlohmann::json::parse(original);
    ASSERT_FALSE(parsed["data"].empty());
    const nlohmann::json before = nlohmann::json::parse(last_json_line(python("onnx_check.py check " + file(name + ".onnx").string()).out));
    for (const std::string& back : {name + ".msgpack.onnx", name + ".h5.onnx"}) {
      SCOPED_TRACE(back);
      EXPECT_EQ(run_ort(back, name), original);  // every float, exactly
      const Output checked = python("onnx_check.py check " + file(back).string());
      ASSERT_EQ(checked.code, 0) << checked.out;
      const auto after = nlohmann::json::parse(last_json_line(checked.out));
      EXPECT_EQ(after["nodes"], before["nodes"]);
      EXPECT_EQ(after["opsets"], before["opsets"]);  // written at the version the graph was made for
      EXPECT_EQ(after["metadata"]["ckpt.graph"], "kept: the graph of the ONNX model the document was read from");
      // Read back, the file ckpt wrote is the document it was written from (one reading).
      const Output same = ckpt_cli("diff " + file(name + ".msgpack").string() + " " + file(back).string());
      EXPECT_EQ(same.code, 0) << same.out;
      EXPECT_NE(same.out.find("identical"), std::string::npos) << same.out;
      const ckpt::Document again = ckpt::read_document(file(back));
      ASSERT_NE(again.find_group_path("extra/onnx/graph"), nullptr);
      EXPECT_EQ(again.find_group_path("extra/onnx/graph")->children().size(), kept->children().size());
    }
  }
}

// One reading: a file written with a kept graph whose graph or opset another tool changed is
// refused, as a file written from model/spec is.
TEST_F(OnnxKeptGraph, AChangedGraphOrOpsetIsRefused) {
  convert("helper.onnx", "helper.for-edit.msgpack");
  convert("helper.for-edit.msgpack", "helper.written.onnx");
  const Output edited = run(std::string(CKPT_PYTHON) + " -c \"import onnx, sys\n"
                            "m = onnx.load(sys.argv[1]); m.graph.node[2].op_type = 'Sub'; onnx.save(m, sys.argv[2])\n"
                            "m = onnx.load(sys.argv[1]); m.opset_import[0].version = 13; onnx.save(m, sys.argv[3])\" " +
                            file("helper.written.onnx").string() + " " + file("sub.onnx").string() + " " + file("opset13.onnx").string());
  ASSERT_EQ(edited.code, 0) << edited.out;
  EXPECT_EQ(ckpt::read_document(file("helper.written.onnx")).find_group_path("extra/onnx/graph")->children().size(), 3u);
  for (const std::string name : {"sub.onnx", "opset13.onnx"}) {
    try {
      ckpt::read_document(file(name));
      ADD_FAILURE() << name << " was read";
    } catch (const ckpt::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("is not the one the document kept (extra/onnx/graph) makes"), std::string::npos) << e.what();
    }
  }
}

TEST_F(OnnxKeptGraph, AFormatWithoutNestedGroupsOrAttributesNamesTheLoss) {
  for (const std::string target : {"helper.npz", "helper.gguf"}) {
    const Output refused = ckpt_cli("convert " + file("helper.onnx").string() + " " + file(target).string());
    EXPECT_NE(refused.code, 0) << refused.out;
    EXPECT_NE(refused.out.find("would lose"), std::string::npos) << refused.out;
    EXPECT_NE(refused.out.find("extra/onnx/graph/nodes/0/op_type"), std::string::npos) << refused.out;
    EXPECT_FALSE(fs::exists(file(target)));
  }
}

TEST_F(OnnxKeptGraph, AGraphTheListingCannotHoldIsNotKeptAndSaysWhy) {
  const ckpt::Document doc = ckpt::read_document(file("loop.onnx"));
  EXPECT_EQ(doc.find_group_path("extra/onnx/graph"), nullptr);
  const ckpt::Value* lost = doc.find_group_path("extra/onnx")->attribute("graph_lost");
  ASSERT_NE(lost, nullptr);
  const std::string text = std::get<std::string>(*lost);
  EXPECT_EQ(text.rfind("not kept: the model does not list as a graph ckpt writes back", 0), 0u) << text;
  EXPECT_NE(text.find("node 0 (Loop \"twice\") attribute \"body\" is a GRAPH"), std::string::npos) << text;
}

TEST_F(OnnxKeptGraph, AStateThatNoLongerFitsTheKeptGraphWritesNoGraphAndSaysWhy) {
  ckpt::Document doc = ckpt::read_document(file("helper.onnx"));
  ASSERT_TRUE(doc.find_group("model")->find_group("state")->erase("scale"));
  write_document(doc, file("edited.onnx"), onnx_save());
  const Output checked = python("onnx_check.py check " + file("edited.onnx").string());
  ASSERT_EQ(checked.code, 0) << checked.out;
  const auto info = nlohmann::json::parse(last_json_line(checked.out));
  EXPECT_TRUE(info["nodes"].empty());
  EXPECT_EQ(info["metadata"]["ckpt.graph"],
            "none: extra/onnx/graph uses initializer \"scale\", which model/state does not hold as [4]");
  // The document still holds the kept graph: nothing of it is lost, only not run.
  EXPECT_NE(ckpt::read_document(file("edited.onnx")).find_group_path("extra/onnx/graph"), nullptr);
}

}  // namespace
