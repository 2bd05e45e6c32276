// The graph between the plugin and the host's onnx layout (docs/formats/onnx.md, "The graph as
// listed"): the plugin writes the onnx.graph group the layout gives it, refuses one it cannot
// write, and no user of a document ever sees the group.
#include "onnx_test_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/layout.hpp>
#include <ckpt/train/model.hpp>

#include <onnx/onnx_pb.h>

#include <functional>

using namespace onnx_test;

namespace {

ckpt::Document mlp_document() {
  auto model = ckpt::train::Model::from_spec(ckpt::train::Model::mlp_spec(784, {32}, 10), 3);
  ckpt::Checkpoint c;
  c.model_spec = model->spec();
  c.model_state = model->state_dict();
  for (auto& node : c.model_state.children()) node.tensor() = node.tensor().clone();
  return c.to_document();
}

}  // namespace

TEST(OnnxGraphGroup, TheLayoutsGraphIsWrittenAndNeverListed) {
  TempDir tmp;
  const fs::path p = tmp / "mlp.onnx";
  const ckpt::Document doc = mlp_document();
  ckpt::write_document(doc, p, onnx_save());
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(slurp(p)));
  EXPECT_EQ(m.graph().node_size(), static_cast<int>(std::get<std::vector<std::string>>(
                                       *doc.find_group_path("model/spec")->attribute("layers")).size()));
  const ckpt::Document back = ckpt::read_document(p);
  EXPECT_EQ(back.find("onnx.graph"), nullptr);
  // Read as a plain ONNX model, the spec comes back from the nodes the layout made.
  const ckpt::Document plain = ckpt::read_document(p, onnx_load({{"layout", "onnx"}}));
  EXPECT_EQ(plain.find("onnx.graph"), nullptr);
  ASSERT_NE(plain.find_group_path("model/spec"), nullptr)
      << ckpt::value_to_string(*plain.find_group_path("extra/onnx")->attribute("spec"));
  EXPECT_TRUE(ckpt::value_equal(*plain.find_group_path("model/spec")->attribute("layers"),
                                *doc.find_group_path("model/spec")->attribute("layers")));
}

TEST(OnnxGraphGroup, ADocumentMayNotHoldTheGroupsName) {
  TempDir tmp;
  ckpt::Document doc = mlp_document();
  doc.add_group("onnx.graph").set("x", int64_t{1});
  try {
    ckpt::write_document(doc, tmp / "x.onnx", onnx_save());
    ADD_FAILURE() << "written";
  } catch (const ckpt::UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("onnx.graph"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp / "x.onnx"));
}

TEST(OnnxGraphGroup, TheWriterRefusesAGraphItCannotWrite) {
  TempDir tmp;
  const ckpt::Format format = ckpt::Registry::global().get("onnx");
  auto attempt = [&](const std::string& type, bool with_value) {
    auto w = format.open_writer(tmp / "g.onnx", {});
    w->begin_group("", 0, 1);
    w->begin_group("onnx.graph", 1, 1);
    w->attribute("note", std::string("built from model/spec"));
    w->begin_group("nodes", 0, 1);
    w->begin_group("0", with_value ? 5 : 4, 0);
    w->attribute("op_type", std::string("Relu"));
    w->attribute("inputs", std::vector<std::string>{"x"});
    w->attribute("attribute_names", std::vector<std::string>{"a"});
    w->attribute("attribute_types", std::vector<std::string>{type});
    if (with_value) w->attribute("value.0", int64_t{1});
    w->end_group();
    w->end_group();
    w->end_group();
    w->end_group();
    w->finish();
  };
  EXPECT_NO_THROW(attempt("INT", true));
  for (const auto& [type, value] : {std::pair{"GRAPH", false}, {"NOT_A_TYPE", true}, {"INT", false}, {"INTS", true}}) {
    SCOPED_TRACE(type);
    try {
      attempt(type, value);
      ADD_FAILURE() << "written";
    } catch (const ckpt::Error& e) {
      EXPECT_NE(std::string(e.what()).find("onnx.graph/nodes/0"), std::string::npos) << e.what();
    }
  }
}

// One reading: a file ckpt wrote whose graph was edited, however slightly, is refused, whether
// the edit shows in the listed group (an attribute's value or type, a dimension's name) or only
// in a field the group has no place for (a node's doc_string); read as a plain ONNX model, each
// still reads.
TEST(OnnxGraphGroup, AnyEditOfTheGraphOfAFileCkptWroteIsRefused) {
  TempDir tmp;
  const fs::path p = tmp / "mlp.onnx";
  ckpt::write_document(mlp_document(), p, onnx_save());
  onnx::ModelProto base;
  ASSERT_TRUE(base.ParseFromString(slurp(p)));
  ASSERT_EQ(base.graph().node(0).op_type(), "Gemm");
  const std::vector<std::pair<std::string, std::function<void(onnx::GraphProto&)>>> edits = {
      {"transB 0", [](onnx::GraphProto& g) { g.mutable_node(0)->mutable_attribute(0)->set_i(0); }},
      {"transB as a float",
       [](onnx::GraphProto& g) {
         auto* a = g.mutable_node(0)->mutable_attribute(0);
         a->set_type(onnx::AttributeProto::FLOAT);
         a->clear_i();
         a->set_f(1);
       }},
      {"a node's doc_string", [](onnx::GraphProto& g) { g.mutable_node(0)->set_doc_string("reviewed"); }},
      {"the batch dimension renamed",
       [](onnx::GraphProto& g) {
         g.mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_param("N");
       }},
  };
  for (const auto& [what, edit] : edits) {
    SCOPED_TRACE(what);
    onnx::ModelProto m = base;
    edit(*m.mutable_graph());
    const fs::path q = tmp / "edited.onnx";
    spit(q, m.SerializeAsString());
    try {
      ckpt::read_document(q);
      ADD_FAILURE() << "read";
    } catch (const ckpt::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("is not the one model/spec makes"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(ckpt::read_document(q, onnx_load({{"layout", "onnx"}})));
  }
}
