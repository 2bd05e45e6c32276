// What is particular to the json format: its layout as Python's json module sees it, the
// numbers encoding, exact attributes, the '$' escape, determinism, and typed errors for
// corrupt files. Generic round trips are the conformance kit's.
#include "scratch.hpp"
#include "terminal_text.hpp"

#include <ckpt/document.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/tensor.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <unistd.h>

using namespace ckpt;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

const fs::path kTestDir = CKPT_JSON_TEST_DIR;

using ckpt_test::TempDir;

SaveOptions json_save(Options options = {}) {
  SaveOptions s;
  s.format = "json";
  s.format_options = std::move(options);
  return s;
}

LoadOptions json_load() {
  LoadOptions l;
  l.format = "json";
  return l;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

// Runs the Python checker; returns its exit status and appends its output to `out`.
int run_python(const std::string& mode, const fs::path& file, std::string& out) {
  std::string cmd = "/usr/bin/python3 '" + (kTestDir / "check_json.py").string() + "' " + mode + " '" +
                    file.string() + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

template <class T>
Tensor tensor_of(DType dtype, Shape shape, std::vector<T> values) {
  return Tensor::from<T>(dtype, std::move(shape), values);
}

void expect_same(const Document& a, const Document& b, const std::string& where = "") {
  ASSERT_EQ(a.attributes().size(), b.attributes().size()) << where;
  for (size_t i = 0; i < a.attributes().size(); ++i) {
    EXPECT_EQ(a.attributes()[i].name, b.attributes()[i].name) << where;
    EXPECT_TRUE(value_equal(a.attributes()[i].value, b.attributes()[i].value))
        << where << "/" << a.attributes()[i].name << ": " << value_to_string(a.attributes()[i].value) << " vs "
        << value_to_string(b.attributes()[i].value);
  }
  ASSERT_EQ(a.children().size(), b.children().size()) << where;
  for (size_t i = 0; i < a.children().size(); ++i) {
    const Node& x = a.children()[i];
    const Node& y = b.children()[i];
    std::string path = where + "/" + x.name;
    EXPECT_EQ(x.name, y.name) << path;
    ASSERT_EQ(x.is_group(), y.is_group()) << path;
    if (x.is_group())
      expect_same(x.group(), y.group(), path);
    else
      EXPECT_TRUE(x.tensor().bit_equal(y.tensor())) << path;
  }
}

Document python_document() {
  Document doc;
  doc.set("epoch", 3);
  doc.set("lr", 0.001);
  doc.set("name", std::string("r\xC3\xA9sum\xC3\xA9 \"q\"\n\x01"));
  doc.set("flags", std::vector<bool>{true, false});
  doc.set("sizes", std::vector<int64_t>{});
  doc.set("bad", std::numeric_limits<double>::quiet_NaN());
  doc.set("$meta", "x");
  Group& state = doc.group("model").group("state");
  std::vector<float> w;
  for (int i = 0; i < 6; ++i) w.push_back(static_cast<float>(i) * 0.5f - 1.f);
  state.add_tensor("fc1.weight", tensor_of<float>(DType::f32, {2, 3}, w));
  state.add_tensor("step", tensor_of<int64_t>(DType::i64, {}, {42}));
  state.add_tensor("empty", Tensor::zeros(DType::u8, {0, 4}));
  state.add_tensor("mask", tensor_of<uint8_t>(DType::boolean, {3}, {1, 0, 1}));
  state.add_tensor("\xE9\x87\x8D\xE3\x81\xBF", tensor_of<uint16_t>(DType::bf16, {2}, {0x3F80, 0xC000}));
  doc.add_group("empty_group");
  return doc;
}

}  // namespace

TEST(JsonLayout, PythonReadsTheLayout) {
  TempDir tmp;
  fs::path p = tmp.path / "doc.json";
  Document doc = python_document();
  write_document(doc, p, json_save());
  std::string out;
  EXPECT_EQ(run_python("base64", p, out), 0) << out << "\n" << slurp(p);
  expect_same(doc, read_document(p));
}

TEST(JsonLayout, PythonReadsNumbers) {
  TempDir tmp;
  fs::path p = tmp.path / "numbers.json";
  Document doc;
  float inf = std::numeric_limits<float>::infinity();
  doc.add_tensor("f", tensor_of<float>(DType::f32, {5}, {1.5f, -0.0f, inf, std::numeric_limits<float>::quiet_NaN(), 0.1f}));
  doc.add_tensor("h", tensor_of<uint16_t>(DType::f16, {2}, {0x3C00, 0x0001}));
  doc.add_tensor("i", tensor_of<int64_t>(DType::i64, {2}, {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}));
  doc.add_tensor("b", tensor_of<uint8_t>(DType::boolean, {2}, {1, 0}));
  write_document(doc, p, json_save({{"tensor_encoding", "numbers"}}));
  std::string out;
  EXPECT_EQ(run_python("numbers", p, out), 0) << out << "\n" << slurp(p);
  expect_same(doc, read_document(p));
}

// The example of docs/formats/json.md, byte for byte.
TEST(JsonLayout, ExactTextOfASmallDocument) {
  TempDir tmp;
  fs::path p = tmp.path / "small.json";
  Document doc;
  doc.set("lr", 1.0);
  doc.set("sizes", std::vector<int64_t>{});
  doc.set("$x", -0.0);
  Group& g = doc.group("g");
  g.set("tags", std::vector<std::string>{"a", "b"});
  g.add_tensor("w", tensor_of<float>(DType::f32, {2}, {1.0f, -2.0f}));
  g.add_group("e");
  write_document(doc, p, json_save());
  EXPECT_EQ(slurp(p),
            "{\n"
            " \"$format\": \"ckpt-json\",\n"
            " \"$version\": 1,\n"
            " \"$attrs\": {\n"
            "  \"lr\": 1.0,\n"
            "  \"sizes\": {\"$type\": \"int64[]\", \"$value\": []},\n"
            "  \"$$x\": -0.0\n"
            " },\n"
            " \"g\": {\n"
            "  \"$attrs\": {\n"
            "   \"tags\": [\"a\", \"b\"]\n"
            "  },\n"
            "  \"w\": {\"$dtype\": \"f32\", \"$shape\": [2], \"$data\": \"AACAPwAAAMA=\"},\n"
            "  \"e\": {}\n"
            " }\n"
            "}\n");
  write_document(doc, p, json_save({{"tensor_encoding", "numbers"}, {"indent", "2"}}));
  EXPECT_NE(slurp(p).find("\n    \"w\": {\"$dtype\": \"f32\", \"$shape\": [2], \"$values\": [1.0, -2.0]},\n"),
            std::string::npos)
      << slurp(p);
}

TEST(JsonLayout, SameDocumentSameBytes) {
  TempDir tmp;
  Document doc = python_document();
  for (const char* enc : {"base64", "numbers"}) {
    write_document(doc, tmp.path / "a.json", json_save({{"tensor_encoding", enc}}));
    write_document(doc, tmp.path / "b.json", json_save({{"tensor_encoding", enc}}));
    EXPECT_EQ(slurp(tmp.path / "a.json"), slurp(tmp.path / "b.json")) << enc;
  }
}

// Every bit pattern of the half types, the edges of the others, and NaNs with payloads.
TEST(JsonNumbers, EveryDtypeRoundTripsBitExact) {
  TempDir tmp;
  Document doc;
  std::vector<uint16_t> all16(65536);
  for (size_t i = 0; i < all16.size(); ++i) all16[i] = static_cast<uint16_t>(i);
  doc.add_tensor("f16", tensor_of<uint16_t>(DType::f16, {256, 256}, all16));
  doc.add_tensor("bf16", tensor_of<uint16_t>(DType::bf16, {65536}, all16));
  std::vector<uint32_t> f32 = {0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF,
                               0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF,
                               0x3DCCCCCD, 0x40490FDB, 0x4B800001};
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) f32.push_back(static_cast<uint32_t>(rng()));
  doc.add_tensor("f32", tensor_of<uint32_t>(DType::f32, {static_cast<int64_t>(f32.size())}, f32));
  std::vector<uint64_t> f64 = {0, 0x8000000000000000, 1, 0x000FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF,
                               0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
                               0xFFF8000000000000, 0x7FF0000000000001, 0x3FB999999999999A,
                               0x4415AF1D78B58C40 /* 1e20 */, 0x43E0000000000000 /* 2^63 */};
  std::mt19937_64 rng64(2);
  for (int i = 0; i < 2000; ++i) f64.push_back(rng64());
  doc.add_tensor("f64", tensor_of<uint64_t>(DType::f64, {static_cast<int64_t>(f64.size())}, f64));
  std::vector<int8_t> i8;
  std::vector<uint8_t> u8;
  for (int i = -128; i < 128; ++i) i8.push_back(static_cast<int8_t>(i));
  for (int i = 0; i < 256; ++i) u8.push_back(static_cast<uint8_t>(i));
  doc.add_tensor("i8", tensor_of<int8_t>(DType::i8, {256}, i8));
  doc.add_tensor("u8", tensor_of<uint8_t>(DType::u8, {16, 16}, u8));
  doc.add_tensor("i16", tensor_of<int16_t>(DType::i16, {3}, {-32768, 0, 32767}));
  doc.add_tensor("i32", tensor_of<int32_t>(DType::i32, {3}, {std::numeric_limits<int32_t>::min(), -1, std::numeric_limits<int32_t>::max()}));
  doc.add_tensor("i64", tensor_of<int64_t>(DType::i64, {3}, {std::numeric_limits<int64_t>::min(), 0, std::numeric_limits<int64_t>::max()}));
  doc.add_tensor("bool", tensor_of<uint8_t>(DType::boolean, {2}, {0, 1}));
  doc.add_tensor("scalar", tensor_of<double>(DType::f64, {}, {-0.0}));
  doc.add_tensor("empty", Tensor::zeros(DType::f16, {3, 0}));
  fs::path p = tmp.path / "n.json";
  write_document(doc, p, json_save({{"tensor_encoding", "numbers"}}));
  expect_same(doc, read_document(p));
  std::string text = slurp(p);
  EXPECT_NE(text.find("\"NaN:0x7f800001\""), std::string::npos);  // a payload survives as bits
  EXPECT_NE(text.find("\"-Infinity\""), std::string::npos);
}

TEST(JsonNumbers, HandWrittenNumbersAreRoundedOrRefused) {
  TempDir tmp;
  fs::path p = tmp.path / "hand.json";
  spit(p, R"({"$format": "ckpt-json", "$version": 1,
    "a": {"$dtype": "f32", "$shape": [3], "$values": [1, 0.1, -2e3]},
    "b": {"$dtype": "f16", "$shape": [2], "$values": [0.1, 65504]},
    "c": {"$data": "AQI=", "$shape": [2], "$dtype": "u8"}})");
  Document doc = read_document(p, json_load());
  EXPECT_EQ(doc.find_tensor("a")->data<float>()[1], 0.1f);
  EXPECT_EQ(doc.find_tensor("a")->data<float>()[2], -2000.f);
  EXPECT_EQ(doc.find_tensor("b")->data<uint16_t>()[0], 0x2E66);  // 0.1 rounded to nearest f16
  EXPECT_EQ(doc.find_tensor("b")->data<uint16_t>()[1], 0x7BFF);
  EXPECT_EQ(doc.find_tensor("c")->data<uint8_t>()[1], 2);  // keys in any order
  spit(p, R"({"$format": "ckpt-json", "$version": 1, "a": {"$dtype": "f16", "$shape": [1], "$values": [70000.0]}})");
  EXPECT_THROW(read_document(p, json_load()), FormatError);
  spit(p, R"({"$format": "ckpt-json", "$version": 1, "a": {"$dtype": "i32", "$shape": [1], "$values": [1.0]}})");
  EXPECT_THROW(read_document(p, json_load()), FormatError);
}

TEST(JsonAttributes, EveryValueRoundTripsExactly) {
  TempDir tmp;
  Document doc;
  double nan_payload = std::bit_cast<double>(uint64_t{0x7FF0000000000123});
  double inf = std::numeric_limits<double>::infinity();
  doc.set("t", true).set("f", false);
  doc.set("imin", std::numeric_limits<int64_t>::min()).set("imax", std::numeric_limits<int64_t>::max());
  doc.set("zero", 0.0).set("negzero", -0.0).set("one", 1.0).set("tenth", 0.1);
  doc.set("denorm", std::numeric_limits<double>::denorm_min()).set("max", std::numeric_limits<double>::max());
  doc.set("big", 1e300).set("int_like", 123456789012345678.0);
  doc.set("nan", std::numeric_limits<double>::quiet_NaN()).set("negnan", -std::numeric_limits<double>::quiet_NaN());
  doc.set("payload", nan_payload).set("inf", inf).set("ninf", -inf);
  doc.set("s", "nul\0inside \"quoted\" \\ \t\x7f \xF0\x9F\x98\x80"s);
  doc.set("empty_s", std::string());
  doc.set("looks_typed", std::string("NaN"));
  doc.set("bools", std::vector<bool>{true, false, true});
  doc.set("ints", std::vector<int64_t>{-1, 0, std::numeric_limits<int64_t>::max()});
  doc.set("floats", std::vector<double>{1.0, -0.0, 2.5e-308});
  doc.set("odd_floats", std::vector<double>{1.0, std::numeric_limits<double>::quiet_NaN(), -inf, nan_payload});
  doc.set("strings", std::vector<std::string>{"", "a", "\xCE\xB1"});
  doc.set("no_bools", std::vector<bool>{}).set("no_ints", std::vector<int64_t>{});
  doc.set("no_floats", std::vector<double>{}).set("no_strings", std::vector<std::string>{});
  doc.set("$dollar", 1).set("$$two", 2).set("$", 3).set("\xE5\x90\x8D\xE5\x89\x8D", 4);
  // Long strings: the reader takes plain ones past the JSON lexer, the others through it.
  std::string plain(200, 'p');
  doc.set("long", plain).set("long_escaped", plain + "\n" + plain).set("long_unicode", plain + "\xC3\xA9" + plain);
  doc.set(std::string(100, 'k'), std::vector<std::string>{plain, plain + "\""});
  Group& g = doc.group("$attrs");  // a group whose name is a reserved key
  g.set("$type", "not a wrapper");
  g.add_tensor("$data", tensor_of<float>(DType::f32, {1}, {1.f}));
  doc.group("$$").add_group("\xF0\x9F\x93\xA6");
  fs::path p = tmp.path / "attrs.json";
  write_document(doc, p, json_save());
  expect_same(doc, read_document(p));
}

TEST(JsonAttributes, HandWrittenValues) {
  TempDir tmp;
  fs::path p = tmp.path / "hand.json";
  spit(p, R"({"$format": "ckpt-json", "$version": 1, "$attrs": {
    "mix": [1, 2.5, -3],
    "t": {"$type": "float64[]", "$value": [1, "NaN", -0.0, "NaN:0xfff8000000000001"]},
    "s": {"$type": "string", "$value": "NaN"},
    "i": {"$type": "int64", "$value": 7},
    "e": {"$type": "string[]", "$value": []}}})");
  Document doc = read_document(p, json_load());
  EXPECT_TRUE(value_equal(*doc.attribute("mix"), Value{std::vector<double>{1.0, 2.5, -3.0}}));
  const auto& t = std::get<std::vector<double>>(*doc.attribute("t"));
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0], 1.0);
  EXPECT_EQ(std::bit_cast<uint64_t>(t[1]), 0x7FF8000000000000u);
  EXPECT_EQ(std::bit_cast<uint64_t>(t[2]), 0x8000000000000000u);
  EXPECT_EQ(std::bit_cast<uint64_t>(t[3]), 0xFFF8000000000001u);
  EXPECT_TRUE(value_equal(*doc.attribute("s"), Value{std::string("NaN")}));
  EXPECT_TRUE(value_equal(*doc.attribute("i"), Value{int64_t{7}}));
  EXPECT_TRUE(value_equal(*doc.attribute("e"), Value{std::vector<std::string>{}}));
}

TEST(JsonAttributes, StringsMustBeUtf8) {
  TempDir tmp;
  Document doc;
  doc.set("bad", std::string("caf\xFF"));
  EXPECT_THROW(write_document(doc, tmp.path / "a.json", json_save()), UnsupportedError);
  Document names;
  names.group("caf\xC3");
  EXPECT_THROW(write_document(names, tmp.path / "b.json", json_save()), UnsupportedError);
  Document arrays;
  arrays.set("list", std::vector<std::string>{"ok", "\xED\xA0\x80"});  // a surrogate
  try {
    write_document(arrays, tmp.path / "c.json", json_save());
    FAIL();
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("'list' element 1"), std::string::npos) << e.what();
  }
}

// Every name the reader refuses, the writer refuses: one check serves both. (A name with NUL,
// which the reader refuses too, cannot reach a writer: ckpt::Document refuses it first.)
TEST(JsonAttributes, NamesTheReaderRefusesAreNotWritten) {
  TempDir tmp;
  const std::string bad[] = {"w\xff\xfe", "\xed\xa0\x80" /* a surrogate */};
  for (const std::string& name : bad) {
    Document tensor, attribute;
    tensor.group("model").add_tensor(name, Tensor::zeros(DType::f32, {2}));
    attribute.set(name, int64_t{1});
    for (const Document* doc : {&tensor, &attribute}) {
      EXPECT_THROW(write_document(*doc, tmp.path / "bad.json", json_save()), UnsupportedError) << name;
      EXPECT_FALSE(fs::exists(tmp.path / "bad.json"));
    }
  }
}

// Messages show names with control bytes escaped and cut on a character boundary.
TEST(JsonCorrupt, MessagesShowNamesEscaped) {
  TempDir tmp;
  std::string accents;
  for (int i = 0; i < 70; ++i) accents += "\xc3\xa9";
  for (const std::string& key : {"\\u001b[2J\\u0007/x"s, accents + "/", "\\u009b31m/"s}) {
    spit(tmp.path / "m.json", R"({"$format": "ckpt-json", "$version": 1, ")" + key + R"(": {}})");
    try {
      read_document(tmp.path / "m.json", json_load());
      ADD_FAILURE() << "read a name with '/'";
    } catch (const FormatError& e) {
      ckpt_test::expect_terminal_safe(e.what());
    }
  }
}

// A zero dimension hides no overflow, in the host's own tensors either: [0, 2^62, 2^62] would be
// 0 bytes whose other dimensions no int64 stride can address (corrupt/zero_dim_hides_overflow
// is the file's side).
TEST(JsonLimits, ZeroDimensionHidesNoOverflow) {
  const int64_t huge = int64_t{1} << 62;
  EXPECT_THROW(Tensor::zeros(DType::u8, {0, huge, huge}), UsageError);
  EXPECT_THROW(Tensor::zeros(DType::f32, {huge, 0, 2}), UsageError);
  EXPECT_EQ(Tensor::zeros(DType::f32, {0, int64_t{1} << 40}).nbytes(), 0u);
  TempDir tmp;
  Document doc;
  doc.add_tensor("w", Tensor::zeros(DType::f32, {0, int64_t{1} << 40}));
  write_document(doc, tmp.path / "z.json", json_save());
  const Document back = read_document(tmp.path / "z.json", json_load());
  ASSERT_NE(back.find_tensor("w"), nullptr);
  EXPECT_EQ(back.find_tensor("w")->shape(), (Shape{0, int64_t{1} << 40}));
}

TEST(JsonOptions, UnknownOrBadOptionsAreRefused) {
  TempDir tmp;
  Document doc = python_document();
  EXPECT_THROW(write_document(doc, tmp.path / "a.json", json_save({{"colour", "red"}})), UsageError);
  EXPECT_THROW(write_document(doc, tmp.path / "a.json", json_save({{"tensor_encoding", "hex"}})), UsageError);
  EXPECT_THROW(write_document(doc, tmp.path / "a.json", json_save({{"indent", "-1"}})), UsageError);
  write_document(doc, tmp.path / "a.json", json_save({{"indent", "0"}}));
  expect_same(doc, read_document(tmp.path / "a.json"));
}

// Tensors of every length near the base64 padding cases and the size above which the reader
// reads the text from the mapping instead of through the JSON lexer.
TEST(JsonData, SizesAroundPaddingAndTheLexerBypass) {
  TempDir tmp;
  Document doc;
  for (int n = 0; n <= 100; ++n) {
    Tensor t = Tensor::zeros(DType::u8, {n});
    for (int i = 0; i < n; ++i) t.mutable_data<uint8_t>()[static_cast<size_t>(i)] = static_cast<uint8_t>(i * 37 + n);
    doc.add_tensor("t" + std::to_string(n), t);
  }
  std::vector<float> big(3 << 18);
  std::mt19937 rng(3);
  for (float& x : big) x = std::normal_distribution<float>()(rng);
  doc.add_tensor("big", tensor_of<float>(DType::f32, {3, 1 << 18}, big));
  doc.group(std::string(300, 'g')).add_tensor(std::string(100, 'n'), tensor_of<float>(DType::f32, {}, {2.f}));
  fs::path p = tmp.path / "sizes.json";
  write_document(doc, p, json_save());
  expect_same(doc, read_document(p));
  // Python's base64 gives the same text for every length (each of the encoder's loops and tails).
  std::string out;
  EXPECT_EQ(run_python("sizes", p, out), 0) << out;
  // read_tensor can be called in any order and again.
  auto reader = open(p);
  Tensor t = reader->read("big");
  EXPECT_TRUE(t.bit_equal(*doc.find_tensor("big")));
  EXPECT_TRUE(reader->read("t7").bit_equal(*doc.find_tensor("t7")));
  EXPECT_TRUE(reader->read("big").bit_equal(t));
}

TEST(JsonIdentify, ClaimsItsOwnFilesOnly) {
  TempDir tmp;
  Format json = Registry::global().get("json");
  auto score = [&](const std::string& text) {
    return json.identify({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, text.size());
  };
  EXPECT_EQ(score("{\"$format\": \"ckpt-json\", \"$version\": 1}"), 100);
  EXPECT_EQ(score("\xEF\xBB\xBF \n{\n  \"$format\" :\"ckpt-json\""), 100);
  EXPECT_EQ(score("{\"model\": \"mlp\", \"backend\": \"hdf5\"}"), 0);
  EXPECT_EQ(score("{\"$format\": \"ckpt-msgpack\"}"), 0);
  EXPECT_EQ(score("[{\"$format\": \"ckpt-json\"}]"), 0);
  EXPECT_EQ(score(""), 0);
  // Found by content under another extension.
  fs::path p = tmp.path / "weights.ckpt";
  write_document(python_document(), p, json_save());
  EXPECT_EQ(open(p)->format().name, "json");
}

TEST(JsonLimits, NestingIsCappedOnBothSides) {
  TempDir tmp;
  Document doc;
  Group* g = &doc;
  for (int i = 0; i < 1025; ++i) g = &g->add_group("g");
  EXPECT_THROW(write_document(doc, tmp.path / "deep.json", json_save()), UnsupportedError);
  std::string text = "{\"$format\": \"ckpt-json\", \"$version\": 1";
  for (int i = 0; i < 1025; ++i) text += (i == 0 ? ", " : "") + "\"g\": {"s;
  text += "\"x\": 1";  // its first key makes the innermost object a group
  fs::path p = tmp.path / "deep.json";
  spit(p, text);
  try {
    read_document(p, json_load());
    FAIL();
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("nest deeper than 1024"), std::string::npos) << e.what();
  }
  // 1024 levels are fine.
  Document ok;
  g = &ok;
  for (int i = 0; i < 1024; ++i) g = &g->add_group("g");
  g->set("leaf", true);
  write_document(ok, p, json_save());
  expect_same(ok, read_document(p));
}

// The golden corrupt files: each line of corrupt/expected.tsv names a file, the exception it
// must raise and substrings its message must hold (the place first).
TEST(JsonCorrupt, GoldenFilesGiveTypedErrorsNamingThePlace) {
  std::ifstream list(kTestDir / "corrupt" / "expected.tsv");
  ASSERT_TRUE(list) << "missing corrupt/expected.tsv";
  std::string line;
  int checked = 0;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream s(line);
    for (std::string f; std::getline(s, f, '\t');) fields.push_back(f);
    ASSERT_GE(fields.size(), 3u) << line;
    fs::path file = kTestDir / "corrupt" / fields[0];
    ASSERT_TRUE(fs::exists(file)) << file;
    std::string kind;
    std::string message;
    try {
      read_document(file, json_load());
      kind = "nothing";
    } catch (const LimitError& e) {
      kind = "LimitError";
      message = e.what();
    } catch (const FormatError& e) {
      kind = "FormatError";
      message = e.what();
    } catch (const UnsupportedError& e) {
      kind = "UnsupportedError";
      message = e.what();
    } catch (const std::exception& e) {
      kind = std::string("other: ") + e.what();
    }
    EXPECT_EQ(kind, fields[1]) << fields[0] << ": " << message;
    EXPECT_NE(message.find("at byte "), std::string::npos) << fields[0] << ": " << message;
    for (size_t i = 2; i < fields.size(); ++i)
      EXPECT_NE(message.find(fields[i]), std::string::npos) << fields[0] << ": '" << fields[i] << "' not in: " << message;
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

// Every truncation of a file and random byte changes give a typed error or a valid document,
// never a crash (this suite runs under ASan and UBSan).
class JsonFuzz : public ::testing::TestWithParam<std::string> {};

TEST_P(JsonFuzz, TruncationsAndByteFlipsNeverCrash) {
  TempDir tmp;
  fs::path good = tmp.path / "good.json";
  Document doc;
  doc.set("lr", 0.5).set("tags", std::vector<std::string>{"a"}).set("e", std::vector<double>{});
  doc.group("m").add_tensor("w", tensor_of<float>(DType::f32, {2, 2}, {1.f, 2.f, 3.f, 4.f}));
  std::vector<uint8_t> long_data(200, 7);
  doc.group("m").add_tensor("long", tensor_of<uint8_t>(DType::u8, {200}, long_data));
  write_document(doc, good, json_save({{"tensor_encoding", GetParam()}}));
  std::string text = slurp(good);
  auto keep_loaded = open(good);  // so that each read does not load the plugin again
  fs::path p = tmp.path / "bad.json";
  for (size_t n = 0; n + 1 < text.size(); ++n) {  // only the final newline may go
    spit(p, text.substr(0, n));
    EXPECT_THROW(read_document(p, json_load()), FormatError) << "truncated to " << n;
  }
  std::mt19937 rng(4);
  int errors = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string t = text;
    for (int k = 0; k < 1 + i % 3; ++k)
      t[rng() % t.size()] = static_cast<char>(i % 2 ? rng() : t[rng() % t.size()]);
    spit(p, t);
    try {
      read_document(p, json_load());
    } catch (const FormatError&) {
      ++errors;
    } catch (const UnsupportedError&) {  // "$version": 1 became a later version
      ++errors;
    }
  }
  EXPECT_GT(errors, 500);
}

INSTANTIATE_TEST_SUITE_P(Encodings, JsonFuzz, ::testing::Values("base64", "numbers"));
