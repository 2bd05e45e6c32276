// Tensors in node attributes (a Constant's value, ConstantOfShape's): read as the document's
// tensors through the initializers' code (raw_data, typed fields, external data confined to the
// model's folder), so that a kept graph holding them converts through msgpack and json back to
// onnx and runs alike in ONNX Runtime, and `ckpt sign` covers their bytes. Models made by
// attribute_tensors.py with torch 1.13 and python3-onnx.
#include "onnx_test_support.hpp"
#include "sanitizers.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

using namespace onnx_test;

namespace {

class OnnxAttributeTensors : public ::testing::Test {
 protected:
  // The models live in DIR/m, so that "../outside.bin" is a file outside the model's folder.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    fs::create_directories(dir_->path / "m");
    const Output made = python("attribute_tensors.py " + (dir_->path / "m").string());
    ASSERT_EQ(made.code, 0) << made.out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path file(const std::string& name) { return dir_->path / "m" / name; }

  static std::string run_ort(const std::string& model, const std::string& name) {
    const Output r = node_ort(file(model).string() + " " + file(name + ".f32").string() + " " + slurp(file(name + ".shape")));
    EXPECT_EQ(r.code, 0) << model << ": " << r.out;
    return last_json_line(r.out);
  }

  static void convert(const std::string& from, const std::string& to, const std::string& options = "") {
    const Output r = ckpt_cli("convert " + file(from).string() + " " + file(to).string() + options);
    ASSERT_EQ(r.code, 0) << from << " -> " << to << ": " << r.out;
  }

  // The message of the FormatError reading `name` gives.
  static std::string refusal(const std::string& name) {
    try {
      ckpt::read_document(file(name));
    } catch (const ckpt::FormatError& e) {
      return e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": not a FormatError: " << e.what();
      return {};
    }
    ADD_FAILURE() << name << " was read";
    return {};
  }

  static TempDir* dir_;
};
TempDir* OnnxAttributeTensors::dir_ = nullptr;

// Every tensor of the kept graph's nodes, by path.
std::vector<std::string> node_tensors(const ckpt::Document& doc) {
  std::vector<std::string> out;
  doc.for_each_tensor([&](const std::string& p, const ckpt::Tensor&) {
    if (p.rfind("extra/onnx/graph/nodes/", 0) == 0) out.push_back(p);
  });
  return out;
}

TEST_F(OnnxAttributeTensors, ConstantsOfTorchAndTypedFieldsRoundTripThroughMsgpackAndJsonAndRunAlike) {
  for (const std::string name : {"torch_consts", "typed"}) {
    SCOPED_TRACE(name);
    const ckpt::Document doc = ckpt::read_document(file(name + ".onnx"));
    ASSERT_NE(doc.find_group_path("extra/onnx/graph"), nullptr);
    EXPECT_EQ(doc.find_group_path("extra/onnx")->attribute("graph_lost"), nullptr);
    const auto tensors = node_tensors(doc);
    EXPECT_EQ(tensors.size(), name == "typed" ? 4u : 2u);
    convert(name + ".onnx", name + ".msgpack");
    convert(name + ".msgpack", name + ".msgpack.onnx");
    convert(name + ".onnx", name + ".json");
    convert(name + ".json", name + ".json.onnx");
    const std::string original = run_ort(name + ".onnx", name);
    ASSERT_FALSE(nlohmann::json::parse(original)["data"].empty());
    const auto before = nlohmann::json::parse(last_json_line(python("onnx_check.py check " + file(name + ".onnx").string()).out));
    for (const std::string& back : {name + ".msgpack.onnx", name + ".json.onnx"}) {
      SCOPED_TRACE(back);
      EXPECT_EQ(run_ort(back, name), original);  // every float, exactly
      const Output checked = python("onnx_check.py check " + file(back).string());
      ASSERT_EQ(checked.code, 0) << checked.out;
      const auto after = nlohmann::json::parse(last_json_line(checked.out));
      EXPECT_EQ(after["nodes"], before["nodes"]);
      // The constants are in their nodes again, not initializers.
      for (const auto& [init, type] : after["initializers"].items()) EXPECT_EQ(init.rfind("ckpt/", 0), std::string::npos) << init;
      const Output same = ckpt_cli("diff " + file(name + ".msgpack").string() + " " + file(back).string());
      EXPECT_EQ(same.code, 0) << same.out;
      EXPECT_NE(same.out.find("identical"), std::string::npos) << same.out;
    }
  }
  // The file ckpt wrote records the constants' hashes: one changed by another tool is found.
  EXPECT_EQ(ckpt_cli("verify " + file("torch_consts.msgpack.onnx").string()).code, 0);
  const Output edited = run(std::string(CKPT_PYTHON) + " -c \"import onnx, sys\n"
                            "m = onnx.load(sys.argv[1])\n"
                            "t = [a.t for n in m.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR][0]\n"
                            "t.raw_data = bytes([t.raw_data[0] ^ 1]) + t.raw_data[1:]\n"
                            "onnx.save(m, sys.argv[2])\" " + file("torch_consts.msgpack.onnx").string() + " " +
                            file("torch_consts.edited.onnx").string());
  ASSERT_EQ(edited.code, 0) << edited.out;
  const Output found = ckpt_cli("verify " + file("torch_consts.edited.onnx").string());
  EXPECT_NE(found.code, 0) << found.out;
  EXPECT_NE(found.out.find("extra/onnx/graph/nodes/"), std::string::npos) << found.out;
  EXPECT_NE(found.out.find("does not match the recorded"), std::string::npos) << found.out;

  // A value the typed fields held reads as its bytes: scale = [2, -0.5, 4].
  const ckpt::Document doc = ckpt::read_document(file("typed.onnx"));
  const ckpt::Tensor* scale = doc.find_tensor_path("extra/onnx/graph/nodes/0/value.0");
  ASSERT_NE(scale, nullptr);
  ASSERT_EQ(scale->dtype(), ckpt::DType::f32);
  EXPECT_EQ(std::vector<float>(scale->data<float>().begin(), scale->data<float>().end()), (std::vector<float>{2.0f, -0.5f, 4.0f}));
  // The TensorProto's name is kept beside it.
  const ckpt::Value* tensor_name = doc.find_group_path("extra/onnx/graph/nodes/0")->attribute("tensor_name.0");
  ASSERT_NE(tensor_name, nullptr);
  EXPECT_EQ(std::get<std::string>(*tensor_name), "scale");
}

TEST_F(OnnxAttributeTensors, AConstantInExternalDataIsReadAndWrittenBackAsExternalData) {
  const ckpt::Document doc = ckpt::read_document(file("external.onnx"));
  const ckpt::Tensor* c = doc.find_tensor_path("extra/onnx/graph/nodes/0/value.0");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->shape(), (ckpt::Shape{12}));
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(c->data<float>()[i], static_cast<float>(i));
  convert("external.onnx", "external.msgpack");
  fs::create_directories(file("out"));
  // Written with external data as initializers of that size would be.
  convert("external.msgpack", "out/external.onnx", " -w external_data=always -w external_threshold=16");
  const std::string original = run_ort("external.onnx", "external");
  EXPECT_EQ(run_ort("out/external.onnx", "external"), original);
  const Output checked = python("onnx_check.py check " + file("out/external.onnx").string());
  ASSERT_EQ(checked.code, 0) << checked.out;
  const Output where = run(std::string(CKPT_PYTHON) + " -c \"import onnx, sys\n"
                           "t = onnx.load(sys.argv[1], load_external_data=False).graph.node[0].attribute[0].t\n"
                           "print(t.data_location, [(e.key, e.value) for e in t.external_data])\" " + file("out/external.onnx").string());
  EXPECT_EQ(where.out.rfind("1 [('location', 'external.onnx.", 0), 0u) << where.out;
  const Output same = ckpt_cli("diff " + file("external.msgpack").string() + " " + file("out/external.onnx").string());
  EXPECT_NE(same.out.find("identical"), std::string::npos) << same.out;
}

// The layout reads a Constant's INT64 tensor (a Reshape's shape) through the host to rebuild
// model/spec; written from the spec, the model runs alike.
TEST_F(OnnxAttributeTensors, AReshapeShapeInAConstantRebuildsTheSpec) {
  const ckpt::Document doc = ckpt::read_document(file("reshape.onnx"));
  const ckpt::Group* spec = doc.find_group_path("model/spec");
  ASSERT_NE(spec, nullptr) << ckpt::value_to_string(*doc.find_group_path("extra/onnx")->attribute("spec"));
  EXPECT_EQ(std::get<std::vector<std::string>>(*spec->attribute("layers")),
            (std::vector<std::string>{"conv", "relu1", "flatten1", "fc"}));
  EXPECT_EQ(doc.find_group_path("extra/onnx/graph"), nullptr);
  EXPECT_TRUE(node_tensors(doc).empty());
  convert("reshape.onnx", "reshape.msgpack");
  convert("reshape.msgpack", "reshape.msgpack.onnx");
  const auto a = parse_json_rows(run_ort("reshape.onnx", "reshape"));
  const auto b = parse_json_rows(run_ort("reshape.msgpack.onnx", "reshape"));
  ASSERT_EQ(a.size(), 3u);
  EXPECT_LE(max_abs_diff(a, b), 1e-6);
}

// `ckpt sign` covers the Constant's bytes in the other file: one byte changed there and verify
// fails, as ONNX Runtime would compute with it.
TEST_F(OnnxAttributeTensors, SigningCoversAConstantsExternalData) {
  const fs::path d = dir_->path / "signed";
  fs::create_directories(d);
  fs::copy_file(file("external.onnx"), d / "external.onnx");
  fs::copy_file(file("const.bin"), d / "const.bin");
  ASSERT_EQ(ckpt_cli("keygen " + (d / "key").string()).code, 0);
  const Output signed_ = ckpt_cli("sign " + (d / "external.onnx").string() + " --key " + (d / "key").string());
  ASSERT_EQ(signed_.code, 0) << signed_.out;
  const std::string verify = "verify " + (d / "external.onnx").string() + " --pubkey " + (d / "key.pub").string();
  const Output good = ckpt_cli(verify);
  EXPECT_EQ(good.code, 0) << good.out;
  std::string bytes = slurp(d / "const.bin");
  bytes[100 + 4 * 5 + 1] ^= 0x01;  // element 5 of the Constant
  spit(d / "const.bin", bytes);
  const Output bad = ckpt_cli(verify);
  EXPECT_NE(bad.code, 0) << bad.out;
}

// The initializers' confinement and limits, with the node and the attribute named.
TEST_F(OnnxAttributeTensors, ExternalLocationsOutsideTheFolderAreRefusedNamingTheNode) {
  const struct {
    const char* model;
    const char* location;
    const char* says;
  } cases[] = {
      {"attack_dotdot.onnx", "\"../outside.bin\"", "climbs out with '..'"},
      {"attack_absolute.onnx", "\"/etc/hostname\"", "is refused"},
      {"attack_symlink.onnx", "\"link_out.bin\"", "resolves (through '..' or a symlink) to a place outside the folder"},
      {"attack_past_end.onnx", "\"const.bin\"", "runs past the end of"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.model);
    const std::string why = refusal(c.model);
    EXPECT_NE(why.find("'" + file(c.model).string() + "'"), std::string::npos) << why;
    EXPECT_NE(why.find("node 0 (Constant \"c\") attribute \"value\""), std::string::npos) << why;
    EXPECT_NE(why.find(c.location), std::string::npos) << why;
    EXPECT_NE(why.find(c.says), std::string::npos) << why;
    // Refused on every path a command takes, before anything is converted.
    const Output cli = ckpt_cli("convert " + file(c.model).string() + " " + file(std::string(c.model) + ".msgpack").string());
    EXPECT_NE(cli.code, 0) << cli.out;
    EXPECT_FALSE(fs::exists(file(std::string(c.model) + ".msgpack")));
  }
}

TEST_F(OnnxAttributeTensors, DimsClaimingATebibyteWithShortDataAreRefusedWithoutAllocating) {
  const std::string why = refusal("attack_huge.onnx");
  EXPECT_NE(why.find("(graph/node[0] attribute[0] \"value\" t)"), std::string::npos) << why;
  EXPECT_NE(why.find("raw_data holds 4 bytes but dims [1099511627776] of FLOAT need 4398046511104"), std::string::npos) << why;
#ifdef CKPT_TEST_ASAN
  GTEST_SKIP() << "the address-space limit and AddressSanitizer's shadow memory do not mix (the refusal above was checked)";
#else
  // Under a 3 GiB address-space limit (the loaded plugins map about 1 GiB): a refusal, not an
  // allocation failure.
  const Output cli = run("ulimit -v 3145728; " + std::string(CKPT_CLI) + " inspect " + file("attack_huge.onnx").string());
  EXPECT_NE(cli.code, 0) << cli.out;
  EXPECT_NE(cli.out.find("raw_data holds 4 bytes"), std::string::npos) << cli.out;
  EXPECT_EQ(cli.out.find("bad_alloc"), std::string::npos) << cli.out;
#endif
}

TEST_F(OnnxAttributeTensors, GraphAndSparseAttributesAreNotKeptAndTheLossNamesNodeAndAttribute) {
  const struct {
    const char* model;
    const char* says;
  } cases[] = {
      {"if.onnx", "node 0 (If \"if0\") attribute \"else_branch\" is a GRAPH"},
      {"sparse.onnx", "node 0 (Constant \"sparse_c\") attribute \"sparse_value\" is a SPARSE_TENSOR"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.model);
    const ckpt::Document doc = ckpt::read_document(file(c.model));
    EXPECT_EQ(doc.find_group_path("extra/onnx/graph"), nullptr);
    const ckpt::Value* lost = doc.find_group_path("extra/onnx")->attribute("graph_lost");
    ASSERT_NE(lost, nullptr);
    const std::string text = std::get<std::string>(*lost);
    EXPECT_EQ(text.rfind("not kept: the model does not list as a graph ckpt writes back", 0), 0u) << text;
    EXPECT_NE(text.find(c.says), std::string::npos) << text;
  }
}

// A graph not kept leaves its nodes' tensors out of the document, while ONNX Runtime still reads
// them: the document records each such reference (meta/@external_references), the top-level
// Constant the plugin read as well as the one in the If's branch, which it does not read.
TEST_F(OnnxAttributeTensors, ExternalDataOfAGraphNotKeptIsRecordedAsExternalReferences) {
  const ckpt::Document doc = ckpt::read_document(file("if_external.onnx"));
  EXPECT_EQ(doc.find_group_path("extra/onnx/graph"), nullptr);
  ASSERT_NE(doc.find_group_path("extra/onnx")->attribute("graph_lost"), nullptr);
  const ckpt::Value* refs = doc.find_group("meta")->attribute("external_references");
  ASSERT_NE(refs, nullptr);
  const auto& list = std::get<std::vector<std::string>>(*refs);
  ASSERT_EQ(list.size(), 2u) << ckpt::value_to_string(*refs);
  EXPECT_EQ(list[0], "graph/node[1] attribute \"then_branch\": node[0] attribute \"value\" -> const.bin");
  EXPECT_EQ(list[1], "graph/node[0] attribute[0] (node 0 (Constant \"c\") attribute \"value\") -> const.bin");
  // A kept graph holds its Constant's bytes: nothing to record.
  EXPECT_EQ(ckpt::read_document(file("external.onnx")).find_group("meta")->attribute("external_references"), nullptr);
}

// `ckpt sign` refuses `model` (copied with `others` into a folder of its own), naming
// `reference`, which ONNX Runtime reads: it computes another result once `changed` (one of
// `others`) holds `bytes`.
void expect_sign_refused(const fs::path& dir, const std::string& model, const std::vector<std::string>& others,
                         const std::string& changed, const std::string& bytes, const std::string& reference) {
  const fs::path d = dir / ("signed_" + model);
  fs::create_directories(d);
  for (const std::string& f : others) fs::copy_file(dir / "m" / f, d / f);
  fs::copy_file(dir / "m" / (model + ".onnx"), d / (model + ".onnx"));
  const std::string ort = (d / (model + ".onnx")).string() + " " + (dir / "m" / (model + ".f32")).string() + " " +
                          slurp(dir / "m" / (model + ".shape"));
  const Output before = node_ort(ort);
  ASSERT_EQ(before.code, 0) << before.out;
  spit(d / changed, bytes);
  const Output after = node_ort(ort);
  ASSERT_EQ(after.code, 0) << after.out;
  EXPECT_NE(last_json_line(after.out), last_json_line(before.out)) << "ONNX Runtime does not read " << changed;

  const ckpt::Document doc = ckpt::read_document(d / (model + ".onnx"));
  const ckpt::Value* refs = doc.find_group("meta")->attribute("external_references");
  ASSERT_NE(refs, nullptr);
  EXPECT_EQ(std::get<std::vector<std::string>>(*refs), std::vector<std::string>{reference});
  ASSERT_EQ(ckpt_cli("keygen " + (d / "key").string()).code, 0);
  const Output signed_ = ckpt_cli("sign " + (d / (model + ".onnx")).string() + " --key " + (d / "key").string());
  EXPECT_NE(signed_.code, 0) << signed_.out;
  EXPECT_NE(signed_.out.find("not signing it: it references other files"), std::string::npos) << signed_.out;
  EXPECT_NE(signed_.out.find(reference), std::string::npos) << signed_.out;
  EXPECT_FALSE(fs::exists(d / (model + ".onnx.sig")));
}

// An initializer of a type ckpt has no dtype for (INT4) is not read, but ONNX Runtime reads its
// external data: the reference is recorded, so the file is not signed as if whole.
TEST_F(OnnxAttributeTensors, SignRefusesAnInitializerOfATypeCkptDoesNotReadInExternalData) {
  expect_sign_refused(dir_->path, "int4_external", {"w4.bin"}, "w4.bin", "\x65\x87",
                      "graph/initializer[0] \"W\" (INT4) -> w4.bin");
}

// A local function's default attribute value (FunctionProto.attribute_proto), a tensor in
// external data that a Constant of its body takes by ref_attr_name: recorded likewise.
TEST_F(OnnxAttributeTensors, SignRefusesAFunctionsDefaultAttributeTensorInExternalData) {
  std::string nines(16, '\0');
  for (size_t i = 0; i < 4; ++i) {
    const float nine = 9.0f;
    std::memcpy(nines.data() + 4 * i, &nine, 4);
  }
  expect_sign_refused(dir_->path, "fn_default", {"fn.bin"}, "fn.bin", nines,
                      "functions[0] \"AddD\" attribute_proto[0] \"v\" -> fn.bin");
}

// What ONNX Runtime refuses, ckpt refuses, naming the place: a second "location" in
// external_data (taking either would read a file ONNX Runtime never reads), and a FLOAT16 held
// in int32_data above 0xFFFF (masking it would read a number ONNX Runtime never computes with).
TEST_F(OnnxAttributeTensors, ADuplicateLocationAndAFloat16AboveSixteenBitsAreRefusedAsOnnxRuntimeDoes) {
  const std::string why = refusal("dup_location.onnx");
  EXPECT_NE(why.find("'" + file("dup_location.onnx").string() + "'"), std::string::npos) << why;
  EXPECT_NE(why.find("(graph/node[0] attribute[0] \"value\" t): external_data gives the key \"location\" twice"),
            std::string::npos) << why;
  const Output ort_dup = node_ort(file("dup_location.onnx").string() + " " + file("dup_location.f32").string() + " 1 4");
  EXPECT_NE(ort_dup.code, 0) << ort_dup.out;
  EXPECT_NE(ort_dup.out.find("duplicate 'location'"), std::string::npos) << ort_dup.out;

  const Output cli = ckpt_cli("convert " + file("f16_high.onnx").string() + " " + file("f16_high.msgpack").string());
  EXPECT_NE(cli.code, 0) << cli.out;
  EXPECT_NE(cli.out.find("'" + file("f16_high.onnx").string() + "': node 0 (Constant \"c\") attribute \"value\": "
                         "int32_data element 0 is 80896, not the bits of a FLOAT16 (0 to 65535)"),
            std::string::npos) << cli.out;
  EXPECT_FALSE(fs::exists(file("f16_high.msgpack")));
  const Output ort_f16 = node_ort(file("f16_high.onnx").string() + " " + file("f16_high.f32").string() + " 1 4");
  EXPECT_NE(ort_f16.code, 0) << ort_f16.out;
  EXPECT_NE(ort_f16.out.find("data overflow"), std::string::npos) << ort_f16.out;
}

// A conversion keeps everything or names what it loses: an initializer ckpt does not read, and a
// graph neither the spec nor the document keeps, are named as losses (meta/@unread), so the
// conversion needs --allow-lossy and records them; a graph the document keeps is no loss.
TEST_F(OnnxAttributeTensors, AnUnreadInitializerAndAGraphNotKeptAreNamedAsLosses) {
  const Output refused = ckpt_cli("convert " + file("int4_external.onnx").string() + " " + file("int4_back.onnx").string());
  EXPECT_NE(refused.code, 0) << refused.out;
  EXPECT_NE(refused.out.find("graph/initializer[0] \"W\": a tensor of INT4 [4], a type ckpt has no dtype for"),
            std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("graph: the model's graph, which the spec cannot express and the document does not keep "
                             "(initializer \"W\" is not read"),
            std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--allow-lossy"), std::string::npos) << refused.out;
  EXPECT_FALSE(fs::exists(file("int4_back.onnx")));

  const Output lossy = ckpt_cli("convert " + file("int4_external.onnx").string() + " " + file("int4_back.msgpack").string() +
                                " --allow-lossy");
  ASSERT_EQ(lossy.code, 0) << lossy.out;
  const ckpt::Document back = ckpt::read_document(file("int4_back.msgpack"));
  const ckpt::Value* losses = back.find_group_path("meta/conversion") ? back.find_group_path("meta/conversion")->attribute("losses") : nullptr;
  ASSERT_NE(losses, nullptr);
  const std::string listed = ckpt::value_to_string(*losses);
  EXPECT_NE(listed.find("INT4"), std::string::npos) << listed;
  EXPECT_NE(listed.find("the model's graph"), std::string::npos) << listed;
  EXPECT_EQ(back.find_group("meta")->attribute("unread"), nullptr);

  // A graph lost for a GRAPH attribute (an If), nothing else unread.
  const Output if_refused = ckpt_cli("convert " + file("if.onnx").string() + " " + file("if_back.onnx").string());
  EXPECT_NE(if_refused.code, 0) << if_refused.out;
  EXPECT_NE(if_refused.out.find("graph: the model's graph"), std::string::npos) << if_refused.out;

  // A kept graph: onnx to onnx without --allow-lossy, nothing unread.
  EXPECT_EQ(ckpt::read_document(file("torch_consts.onnx")).find_group("meta")->attribute("unread"), nullptr);
  convert("torch_consts.onnx", "torch_consts.back.onnx");
  EXPECT_EQ(run_ort("torch_consts.back.onnx", "torch_consts"), run_ort("torch_consts.onnx", "torch_consts"));
}

}  // namespace
