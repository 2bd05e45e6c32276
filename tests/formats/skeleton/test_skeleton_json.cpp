// The SDK's skeleton codec (ckpt/sdk_skeleton.hpp): one parser and one writer for every
// format's spelling of ckpt's document skeleton. A skeleton ckpt wrote reads back and writes again to the same bytes, and
// text that is not the layout fails naming its place, within the depth and memory bounds.
#include <ckpt/sdk_skeleton.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using ckpt::sdk::Tree;
using ckpt::sdk::Value;
using ckpt::sdk::SkeletonKeys;

namespace {

// What plugins/onnx writes in its ckpt.document metadata entry.
constexpr SkeletonKeys kOnnx{.format = "ckpt-onnx-document", .version = 1, .attributes = "attributes",
                             .children = "children", .location = "initializer", .name_in_child = true,
                             .floats_as_bits = false, .omit_empty = true, .max_depth = 1024};
// What plugins/pytorch writes as ckpt/document.json.
constexpr SkeletonKeys kPytorch{.format = "ckpt-pytorch", .version = 1, .attributes = "attrs", .children = "children",
                                .location = "storage", .name_in_child = false, .floats_as_bits = true,
                                .omit_empty = false, .max_depth = 700};

struct Parsed {
  Tree tree;
  std::vector<std::string> locations;
};

Parsed parse(std::string_view text, const SkeletonKeys& keys, uint64_t max_bytes = UINT64_MAX) {
  Parsed p;
  ckpt::sdk::SkeletonSource source;
  source.where = [](const std::string& path) { return "doc (" + path + "): "; };
  source.max_bytes = max_bytes;
  p.tree = ckpt::sdk::read_skeleton(text, keys, source, [&](const Tree::Tensor&, std::string location, const std::string&) {
    p.locations.push_back(std::move(location));
    return p.locations.size() - 1;
  });
  return p;
}

std::string write(const Parsed& p, const SkeletonKeys& keys) {
  return ckpt::sdk::write_skeleton(p.tree, keys, [&](size_t k) { return std::string_view(p.locations[k]); });
}

std::string error_of(std::string_view text, const SkeletonKeys& keys, ckpt_status_code* code = nullptr,
                     uint64_t max_bytes = UINT64_MAX) {
  try {
    parse(text, keys, max_bytes);
  } catch (const ckpt::sdk::Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "(no error)";
}

// A skeleton pytorch's own writer made (golden/pytorch_document.json: every attribute type,
// -0.0, inf, NaN, text that is not UTF-8, nested and empty groups) reads and writes back to
// its bytes with pytorch's keys.
TEST(SkeletonJson, PytorchSkeletonRoundTripsToItsBytes) {
  std::ifstream in(std::string(CKPT_SKELETON_TEST_DIR) + "/golden/pytorch_document.json", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string golden = ss.str();
  ASSERT_FALSE(golden.empty());
  const Parsed p = parse(golden, kPytorch);
  EXPECT_EQ(write(p, kPytorch), golden);
  ASSERT_NE(p.tree.find_path("model/state"), Tree::npos);
  const Tree::Tensor* w = p.tree.find_tensor(p.tree.find_path("model/state"), "weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w->nbytes, 24u);
  EXPECT_TRUE(std::signbit(p.tree.find_attribute(0, "negzero")->f));
  EXPECT_EQ(p.tree.find_attribute(0, "raw")->s, "\xff\xfe");
}

TEST(SkeletonJson, OnnxSpellingRoundTrips) {
  Tree tree;
  tree.add_attribute(0, "lr", Value::floating(0.1));
  tree.add_attribute(0, "negzero", Value::floating(-0.0));
  tree.add_attribute(0, "raw", Value::string("\xff"));
  const size_t g = tree.add_group(0, "model");
  Tree::Tensor t;
  t.name = "w";
  t.dtype = CKPT_DTYPE_F32;
  t.shape = {2};
  t.nbytes = 8;
  tree.add_tensor(g, t);
  tree.add_group(0, "empty");
  Parsed p{std::move(tree), {"fc.weight"}};
  const std::string text = write(p, kOnnx);
  EXPECT_EQ(text,
            R"({"format":"ckpt-onnx-document","root":{"attributes":[["lr","float64",0.1],)"
            R"(["negzero","float64",{"bits":"8000000000000000"}],["raw","string",{"hex":"ff"}]],)"
            R"("children":[{"children":[{"dtype":"f32","initializer":"fc.weight","shape":[2],"tensor":"w"}],"group":"model"},)"
            R"({"group":"empty"}]},"version":1})");
  const Parsed back = parse(text, kOnnx);
  EXPECT_EQ(write(back, kOnnx), text);
  EXPECT_EQ(back.locations, std::vector<std::string>{"fc.weight"});
}

// safetensors' "ckpt.document": keys in the order written, floats JSON has no number for by
// name, UTF-8 text only, tensors by name alone (the header describes them).
TEST(SkeletonJson, SafetensorsSpellingRoundTrips) {
  constexpr SkeletonKeys kSafetensors{.format = "ckpt-safetensors", .version = 1, .attributes = "attributes",
                                      .children = "members", .location = "", .name_in_child = true,
                                      .floats_as_bits = false, .omit_empty = false, .max_depth = 1000,
                                      .keys_in_order = true, .named_floats = true, .utf8_only = true,
                                      .name_only_tensors = true};
  Tree tree;
  Value floats;
  floats.type = CKPT_VALUE_FLOAT64_ARRAY;
  floats.floats = {-0.0, INFINITY, -INFINITY, std::bit_cast<double>(0x7ff8000000000000ull),
                   std::bit_cast<double>(0xfff8000000000123ull), 2.0};
  tree.add_attribute(0, "f", floats);
  const size_t g = tree.add_group(0, "model");
  Tree::Tensor t;
  t.name = "w";
  t.dtype = CKPT_DTYPE_F32;
  t.shape = {2};
  tree.add_tensor(g, t);
  const std::string text = ckpt::sdk::write_skeleton(tree, kSafetensors, {});
  EXPECT_EQ(text, R"({"format":"ckpt-safetensors","version":1,"root":{"attributes":[["f","float64[]",)"
                  R"([-0.0,"Infinity","-Infinity","NaN","NaN:0xfff8000000000123",2.0]]],"members":[)"
                  R"({"group":"model","attributes":[],"members":[{"tensor":"w"}]}]}})");
  ckpt::sdk::SkeletonSource source;
  source.where = [](const std::string& path) { return "doc (" + path + "): "; };
  std::vector<std::string> paths;
  const Tree back = ckpt::sdk::read_skeleton(text, kSafetensors, source, [&](Tree::Tensor& u, std::string location, const std::string& path) {
    EXPECT_TRUE(location.empty());
    u.dtype = CKPT_DTYPE_F32;
    u.shape = {2};
    u.nbytes = 8;
    paths.push_back(path);
    return uint64_t{7};
  });
  EXPECT_EQ(paths, std::vector<std::string>{"model/w"});
  EXPECT_EQ(ckpt::sdk::write_skeleton(back, kSafetensors, {}), text);
  const std::vector<double>& f = back.find_attribute(0, "f")->floats;
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(std::bit_cast<uint64_t>(f[4]), 0xfff8000000000123ull);
  EXPECT_EQ(back.find_tensor(back.find_path("model"), "w")->id, 7u);
  tree.add_attribute(0, "raw", Value::string("\xff"));
  try {
    ckpt::sdk::write_skeleton(tree, kSafetensors, {});
    ADD_FAILURE() << "wrote text that is not UTF-8";
  } catch (const ckpt::sdk::Error& e) {
    EXPECT_EQ(e.code(), CKPT_ERR_UNSUPPORTED);
  }
}

// A reader that lists a tree of views parses through a sink: it gets each group, attribute and
// tensor in document order with its document path, and words faults itself, naming the place
// as a JSON pointer into the text (safetensors' dialect: lists optional, keys strict, values
// counted).
constexpr SkeletonKeys kStrict{.format = "ckpt-safetensors", .version = 1, .attributes = "attributes",
                               .children = "members", .location = "", .name_in_child = true,
                               .floats_as_bits = false, .omit_empty = false, .max_depth = 1000,
                               .keys_in_order = true, .named_floats = true, .utf8_only = true,
                               .name_only_tensors = true, .lists_optional = true, .strict_keys = true,
                               .max_values = 64, .levels_per_group = 2};

struct Recorder final : ckpt::sdk::SkeletonSink {
  std::vector<std::string> calls;
  size_t groups = 0;
  size_t group(size_t parent, std::string_view name, const ckpt::sdk::SkeletonPlace& at) override {
    calls.push_back("group " + std::to_string(parent) + " " + std::string(name) + " at " + ckpt::sdk::json_pointer(at.steps));
    return ++groups;
  }
  void attribute_name(size_t, std::string_view, const ckpt::sdk::SkeletonPlace&) override {}
  void attribute(size_t g, std::string_view name, ckpt::sdk::ValueView&& v, const ckpt::sdk::SkeletonPlace& at) override {
    calls.push_back("attribute " + std::to_string(g) + " " + std::string(name) + "=" + std::to_string(v.i) + " at " +
                    ckpt::sdk::json_pointer(at.steps));
  }
  void tensor(size_t parent, ckpt::sdk::ViewTree::Tensor&& t, std::string_view, std::string_view path,
              const ckpt::sdk::SkeletonPlace& at) override {
    calls.push_back("tensor " + std::to_string(parent) + " " + std::string(t.name) + " " + std::string(path) + " at " +
                    ckpt::sdk::json_pointer(at.steps));
  }
};

std::string strict_error(std::string_view text, ckpt_status_code* code = nullptr) {
  ckpt::sdk::SkeletonSource source;
  source.describe = [](const ckpt::sdk::SkeletonFault& f) {
    return "entry" + ckpt::sdk::json_pointer(f.at.steps) + ": " + ckpt::sdk::skeleton_words(f, kStrict);
  };
  Recorder r;
  try {
    ckpt::sdk::read_skeleton(text, kStrict, source, r);
  } catch (const ckpt::sdk::Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "(no error)";
}

TEST(SkeletonJson, SinkGetsEachNodeWithItsPlace) {
  ckpt::sdk::SkeletonSource source;
  source.where = [](const std::string& path) { return "doc (" + path + "): "; };
  Recorder r;
  ckpt::sdk::read_skeleton(R"({"format":"ckpt-safetensors","version":1,"root":{"attributes":[["n","int64",3]],)"
                           R"("members":[{"group":"m","members":[{"tensor":"w"}]},{"tensor":"b"}]}})",
                           kStrict, source, r);
  EXPECT_EQ(r.calls, (std::vector<std::string>{"attribute 0 n=3 at /root/attributes/0", "group 0 m at /root/members/0",
                                               "tensor 1 w m/w at /root/members/0/members/0",
                                               "tensor 0 b b at /root/members/1"}));
}

TEST(SkeletonJson, StrictDialectRefusesWhatADomWouldHide) {
  ckpt_status_code code{};
  EXPECT_EQ(strict_error(R"({"format":"ckpt-safetensors","version":1,"version":1,"root":{}})", &code),
            "entry: duplicate key 'version'");
  EXPECT_EQ(code, CKPT_ERR_FORMAT);
  EXPECT_EQ(strict_error(R"({"format":"ckpt-safetensors","version":1,"root":{},"extra":0})"), "entry: unknown key 'extra'");
  EXPECT_EQ(strict_error(R"({"format":"ckpt-safetensors","version":1,"root":{"group":"g"}})"),
            "entry/root: unknown key 'group' in a group");
  EXPECT_EQ(strict_error(R"({"format":"ckpt-safetensors","version":1,"root":{"attributes":[["f","float64","NaN:0x7FF8000000000001"]]}})"),
            "entry/root/attributes/0/2: a float64 must be a number, \"NaN\", \"NaN:0x<16 hex digits of a NaN>\", "
            "\"Infinity\" or \"-Infinity\"");
  EXPECT_EQ(strict_error(R"({"format":"ckpt-safetensors","version":1,"root":{"members":[{"tensor":"w","x":1}]}})"),
            "entry/root/members/0: unknown key 'x' in a tensor");
  std::string many = R"({"format":"ckpt-safetensors","version":1,"root":{"attributes":[["a","int64[]",[)";
  for (int i = 0; i < 64; ++i) many += std::string(i ? "," : "") + "1";
  many += "]]]}}";
  EXPECT_EQ(strict_error(many, &code), "entry: more than 64 JSON values");
  EXPECT_EQ(code, CKPT_ERR_LIMIT);
  // A group may leave out its lists.
  EXPECT_EQ(strict_error(R"({"format":"ckpt-safetensors","version":1,"root":{"members":[{"group":"g"}]}})"), "(no error)");
  // Duplicate keys are found in objects of many keys too.
  std::string wide = R"({"format":"ckpt-safetensors","version":1,"root":{},"k":{)";
  for (int i = 0; i < 20; ++i) wide += "\"k" + std::to_string(i) + "\":0,";
  wide += "\"k3\":0}}";
  EXPECT_EQ(strict_error(wide), "entry: duplicate key 'k3'");
}

TEST(SkeletonJson, RefusesWhatIsNotTheLayout) {
  ckpt_status_code code{};
  EXPECT_NE(error_of(R"({"format":"ckpt-pytorch","version":2,"root":{}})", kPytorch, &code).find("version 2"), std::string::npos);
  EXPECT_EQ(code, CKPT_ERR_UNSUPPORTED);
  EXPECT_NE(error_of(R"({"format":"other","version":1,"root":{}})", kPytorch, &code).find("\"format\""), std::string::npos);
  EXPECT_EQ(code, CKPT_ERR_FORMAT);
  EXPECT_NE(error_of(R"({"format":"ckpt-pytorch","version":1,"root":{"attrs":[],"children":[["a",{"attrs":[],"children":[]}],)"
                     R"(["a",{"attrs":[],"children":[]}]]}})",
                     kPytorch)
                .find("duplicate child 'a'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"format":"ckpt-onnx-document","version":1,"root":{"extra":1}})", kOnnx).find("unknown key 'extra'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"format":"ckpt-onnx-document","version":1,"root":{"attributes":[["a","int64",18446744073709551615]]}})",
                     kOnnx)
                .find("does not fit in int64"),
            std::string::npos);
  // A second name is found before an unknown type in the codec's own dialects.
  EXPECT_NE(error_of(R"({"format":"ckpt-onnx-document","version":1,"root":{"attributes":[["a","int64",1],["a","int9",1]]}})",
                     kOnnx)
                .find("duplicate attribute 'a'"),
            std::string::npos);
  std::string with_nul = R"({"format":"ckpt-onnx-document","version":1,"root":{}})";
  with_nul.insert(with_nul.begin() + 1, '\0');
  EXPECT_NE(error_of(with_nul, kOnnx).find("NUL"), std::string::npos);
}

TEST(SkeletonJson, BoundsDepthAndMemory) {
  std::string deep = R"({"format":"ckpt-onnx-document","version":1,"root":)";
  for (int i = 0; i < 2000; ++i) deep += R"({"children":[{"group":"g",)";
  deep += "\"attributes\":[]";
  for (int i = 0; i < 2000; ++i) deep += "}]}";
  deep += "}";
  ckpt_status_code code{};
  error_of(deep, kOnnx, &code);
  EXPECT_EQ(code, CKPT_ERR_LIMIT);

  std::string wide = R"({"format":"ckpt-onnx-document","version":1,"root":{"attributes":[)";
  for (int i = 0; i < 1000; ++i) wide += std::string(i ? "," : "") + "[\"a" + std::to_string(i) + "\",\"int64\",1]";
  wide += "]}}";
  EXPECT_NE(error_of(wide, kOnnx, &code, 4096).find("max_document_bytes"), std::string::npos);
  EXPECT_EQ(code, CKPT_ERR_LIMIT);
  EXPECT_EQ(error_of(wide, kOnnx), "(no error)");
}

}  // namespace
