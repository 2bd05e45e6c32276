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
