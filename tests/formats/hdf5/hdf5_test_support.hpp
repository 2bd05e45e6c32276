// What the hdf5 plugin's tests share: temporary folders, running h5py scripts and the ckpt
// program, the sample document, document comparison, manifests (see manifest.py), and the
// fixtures h5py writes.
#pragma once

#include "scratch.hpp"

#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace hdf5_test {

using namespace ckpt;
namespace fs = std::filesystem;
using json = nlohmann::json;

inline const fs::path kScripts = CKPT_HDF5_TEST_DIR;
inline constexpr const char* kPython = "/usr/bin/python3";

using ckpt_test::TempDir;

// Runs a shell command; returns its exit status and leaves its output in `out`.
inline int run(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

inline bool have_h5py() {
  static const bool ok = run(std::string(kPython) + " -c 'import h5py, numpy'") == 0;
  return ok;
}
// A missing tool fails the test: a skipped check passes unnoticed in CI.
#define REQUIRE_H5PY() \
  if (!have_h5py()) FAIL() << "needs /usr/bin/python3 with h5py and numpy (scripts/setup.sh installs them)"

inline std::string python(const std::string& script, const std::vector<fs::path>& args, int* status) {
  std::string cmd = std::string(kPython) + " " + quoted(kScripts / script);
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quoted(a);
  }
  std::string out;
  *status = run(cmd, &out);
  return out;
}

inline LoadOptions hdf5_load(Options opts = {}) {
  LoadOptions lo;
  lo.format = "hdf5";
  lo.format_options = std::move(opts);
  return lo;
}
inline SaveOptions hdf5_save(Options opts = {}) {
  SaveOptions so;
  so.format = "hdf5";
  so.format_options = std::move(opts);
  return so;
}

// ---- the sample document ---------------------------------------------------------------------

inline Tensor random_tensor(DType d, Shape shape, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(d, std::move(shape));
  auto b = t.mutable_bytes();
  for (auto& x : b) x = static_cast<std::byte>(d == DType::boolean ? rng() & 1 : rng() & 0xff);
  return t;
}

inline Document sample_document() {
  std::mt19937_64 rng(42);
  Document doc;
  doc.set("flag", true)
      .set("count", int64_t{-42})
      .set("nan", std::bit_cast<double>(uint64_t{0x7ff8000000000123}))
      .set("neg_zero", -0.0)
      .set("text", "héllo wörld")
      .set("with_nul", std::string("a\0b", 3))
      .set("not_utf8", std::string("\xff\xfe"))
      .set("empty_text", "")
      .set("bools", std::vector<bool>{true, false, true})
      .set("ints", std::vector<int64_t>{1, -2, std::numeric_limits<int64_t>::min(),
                                        std::numeric_limits<int64_t>::max()})
      .set("floats", std::vector<double>{0.5, -0.0, std::numeric_limits<double>::infinity()})
      .set("texts", std::vector<std::string>{"x", "", "ünï"})
      .set("texts_with_nul", std::vector<std::string>{"a", std::string("\0", 1)})
      .set("no_bools", std::vector<bool>{})
      .set("no_ints", std::vector<int64_t>{})
      .set("no_floats", std::vector<double>{})
      .set("no_texts", std::vector<std::string>{})
      .set(".", int64_t{1})
      .set("a attribute with spaces", "ok");
  // Over HDF5's 64 KiB object-header message limit.
  std::vector<int64_t> many(100000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>(i * i);
  doc.set("big_ints", many);
  std::vector<std::string> names(10000);
  for (size_t i = 0; i < names.size(); ++i) names[i] = "layer." + std::to_string(i);
  doc.set("big_texts", names);

  // Children in an order that is not the names' order.
  Group& z = doc.add_group("zeta");
  z.set("depth", int64_t{1});
  Group& deep = z.add_group("deeper").add_group("deepest");
  deep.set("depth", int64_t{3});
  deep.add_tensor("leaf", random_tensor(DType::f32, {2, 2}, rng));
  const DType all[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                       DType::u8,  DType::i16, DType::i32, DType::i64,  DType::boolean};
  for (DType d : all) doc.add_tensor("t_" + std::string(name(d)), random_tensor(d, {3, 5}, rng));
  doc.add_tensor("scalar", random_tensor(DType::f64, {}, rng));
  doc.add_tensor("scalar_bool", Tensor::from<uint8_t>(DType::boolean, {}, {1}));
  doc.add_tensor("empty", Tensor::empty(DType::f32, {0, 3}));
  doc.add_tensor("empty_1d", Tensor::empty(DType::i64, {0}));
  doc.add_tensor("rank4", random_tensor(DType::f16, {2, 3, 1, 4}, rng));
  Group& dot = doc.add_group(".");
  dot.set("inside", "the dot");
  dot.add_tensor("..", random_tensor(DType::u8, {4}, rng));
  doc.add_tensor("%percent", random_tensor(DType::i16, {2}, rng));
  doc.add_tensor("%2E", random_tensor(DType::i16, {2}, rng));
  doc.add_tensor(" ", random_tensor(DType::i8, {1}, rng));
  doc.add_tensor("ünïcode:0", random_tensor(DType::bf16, {2, 2}, rng));
  doc.add_group("empty group");
  doc.add_tensor("alpha", random_tensor(DType::f32, {7}, rng));
  return doc;
}

// ---- comparing documents --------------------------------------------------------------------

// Same names in the same order, equal attribute values (bitwise) and bit-equal tensors.
inline void expect_same(const Group& want, const Group& got, const std::string& path = "/") {
  ASSERT_EQ(want.attributes().size(), got.attributes().size()) << path;
  for (size_t i = 0; i < want.attributes().size(); ++i) {
    const auto& a = want.attributes()[i];
    const auto& b = got.attributes()[i];
    EXPECT_EQ(a.name, b.name) << path << " attribute " << i;
    EXPECT_TRUE(value_equal(a.value, b.value))
        << path << "@" << a.name << ": " << value_to_string(a.value) << " vs " << value_to_string(b.value);
  }
  ASSERT_EQ(want.children().size(), got.children().size()) << path;
  for (size_t i = 0; i < want.children().size(); ++i) {
    const Node& a = want.children()[i];
    const Node& b = got.children()[i];
    ASSERT_EQ(a.name, b.name) << path << " child " << i;
    ASSERT_EQ(a.is_tensor(), b.is_tensor()) << path << a.name;
    if (a.is_group()) {
      expect_same(a.group(), b.group(), path + a.name + "/");
    } else {
      EXPECT_EQ(a.tensor().dtype(), b.tensor().dtype()) << path << a.name;
      EXPECT_EQ(a.tensor().shape(), b.tensor().shape()) << path << a.name;
      EXPECT_TRUE(a.tensor().bit_equal(b.tensor())) << path << a.name;
    }
  }
}

// A document as convert wrote it, less the hashes convert records in every file it writes
// (meta/integrity; meta too when nothing else is in it).
inline Document without_hashes(Document d) {
  if (Group* meta = d.find_group("meta")) {
    meta->erase("integrity");
    if (meta->children().empty() && meta->attributes().empty()) d.erase("meta");
  }
  return d;
}

// Every expected attribute and tensor is there and equal, nothing else is; order aside (files of
// other tools list by name, the manifest does not).
inline void expect_equivalent(const Group& want, const Group& got, const std::string& path = "/") {
  EXPECT_EQ(want.attributes().size(), got.attributes().size()) << path;
  for (const auto& a : want.attributes()) {
    const Value* v = got.attribute(a.name);
    if (!v) {
      ADD_FAILURE() << path << "@" << a.name << " missing";
      continue;
    }
    EXPECT_TRUE(value_equal(a.value, *v))
        << path << "@" << a.name << ": " << value_to_string(a.value) << " vs " << value_to_string(*v);
  }
  EXPECT_EQ(want.children().size(), got.children().size()) << path;
  for (const Node& a : want.children()) {
    const Node* b = got.find(a.name);
    if (!b) {
      ADD_FAILURE() << path << a.name << " missing";
      continue;
    }
    ASSERT_EQ(a.is_tensor(), b->is_tensor()) << path << a.name;
    if (a.is_group()) {
      expect_equivalent(a.group(), b->group(), path + a.name + "/");
    } else {
      EXPECT_EQ(a.tensor().dtype(), b->tensor().dtype()) << path << a.name;
      EXPECT_EQ(a.tensor().shape(), b->tensor().shape()) << path << a.name;
      EXPECT_TRUE(a.tensor().bit_equal(b->tensor())) << path << a.name;
    }
  }
}

// ---- manifests (see manifest.py) ------------------------------------------------------------

inline std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}
inline std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}
inline std::string bits(double x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(x)));
  return buf;
}
inline double from_bits(const std::string& h) { return std::bit_cast<double>(std::stoull(h, nullptr, 16)); }

inline json value_json(const Value& v) {
  json j;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) j = {{"type", "bool"}, {"value", x}};
        else if constexpr (std::is_same_v<T, int64_t>) j = {{"type", "int64"}, {"value", x}};
        else if constexpr (std::is_same_v<T, double>) j = {{"type", "float64"}, {"value", bits(x)}};
        else if constexpr (std::is_same_v<T, std::string>) j = {{"type", "string"}, {"value", hex(x)}};
        else {
          json arr = json::array();
          std::string t;
          for (const auto& e : x) {
            using E = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, std::vector<bool>>) { arr.push_back(static_cast<bool>(e)); t = "bool[]"; }
            else if constexpr (std::is_same_v<E, int64_t>) arr.push_back(e);
            else if constexpr (std::is_same_v<E, double>) arr.push_back(bits(e));
            else arr.push_back(hex(e));
          }
          if constexpr (std::is_same_v<T, std::vector<bool>>) t = "bool[]";
          else if constexpr (std::is_same_v<T, std::vector<int64_t>>) t = "int64[]";
          else if constexpr (std::is_same_v<T, std::vector<double>>) t = "float64[]";
          else t = "string[]";
          j = {{"type", t}, {"value", arr}};
        }
      },
      v);
  return j;
}

inline Value value_from_json(const json& j) {
  const std::string t = j.at("type");
  const json& v = j.at("value");
  if (t == "bool") return v.get<bool>();
  if (t == "int64") return v.get<int64_t>();
  if (t == "float64") return from_bits(v.get<std::string>());
  if (t == "string") return unhex(v.get<std::string>());
  if (t == "bool[]") return v.get<std::vector<bool>>();
  if (t == "int64[]") return v.get<std::vector<int64_t>>();
  std::vector<std::string> s;
  for (const auto& e : v) s.push_back(e.get<std::string>());
  if (t == "float64[]") {
    std::vector<double> f;
    for (const auto& e : s) f.push_back(from_bits(e));
    return f;
  }
  for (auto& e : s) e = unhex(e);
  return s;
}

inline void write_manifest(const Document& doc, const fs::path& folder, const std::string& name) {
  json groups = json::array(), tensors = json::array();
  std::function<void(const Group&, const std::string&)> walk = [&](const Group& g, const std::string& path) {
    json attrs = json::array();
    for (const auto& a : g.attributes()) {
      json e = value_json(a.value);
      e["name"] = a.name;
      attrs.push_back(e);
    }
    groups.push_back({{"path", path}, {"attrs", attrs}});
    for (const Node& n : g.children()) {
      const std::string p = path.empty() ? n.name : path + "/" + n.name;
      if (n.is_group()) {
        walk(n.group(), p);
        continue;
      }
      const std::string file = name + "." + std::to_string(tensors.size()) + ".bin";
      std::ofstream(folder / file, std::ios::binary)
          .write(reinterpret_cast<const char*>(n.tensor().bytes().data()),
                 static_cast<std::streamsize>(n.tensor().nbytes()));
      tensors.push_back({{"path", p}, {"dtype", std::string(ckpt::name(n.tensor().dtype()))},
                         {"shape", n.tensor().shape()}, {"file", file}});
    }
  };
  walk(doc, "");
  std::ofstream(folder / (name + ".json")) << json{{"groups", groups}, {"tensors", tensors}}.dump(1);
}

// The document a manifest describes (groups, then tensors, in the manifest's order).
inline Document read_manifest(const fs::path& file) {
  json m = json::parse(std::ifstream(file));
  Document doc;
  auto at = [&](const std::string& path) -> Group& {
    Group* g = &doc;
    size_t p = 0;
    while (p < path.size()) {
      size_t q = path.find('/', p);
      if (q == std::string::npos) q = path.size();
      g = &g->group(path.substr(p, q - p));
      p = q + 1;
    }
    return *g;
  };
  for (const auto& g : m.at("groups")) {
    Group& grp = at(g.at("path"));
    for (const auto& a : g.at("attrs")) grp.set(a.at("name").get<std::string>(), value_from_json(a));
  }
  for (const auto& t : m.at("tensors")) {
    const std::string path = t.at("path");
    const size_t slash = path.rfind('/');
    Group& g = slash == std::string::npos ? doc : at(path.substr(0, slash));
    Tensor tensor = Tensor::empty(dtype_from_name(t.at("dtype").get<std::string>()), t.at("shape").get<Shape>());
    std::ifstream(file.parent_path() / t.at("file").get<std::string>(), std::ios::binary)
        .read(reinterpret_cast<char*>(tensor.mutable_bytes().data()), static_cast<std::streamsize>(tensor.nbytes()));
    g.add_tensor(slash == std::string::npos ? path : path.substr(slash + 1), tensor);
  }
  return doc;
}

inline std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline void put_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Fixtures h5py writes, made once for all tests that read them.
class H5pyFixtures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_h5py()) return;
    dir_ = new TempDir;
    int status = 0;
    std::string out = python("h5py_write_fixtures.py", {dir_->path}, &status);
    ASSERT_EQ(status, 0) << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { REQUIRE_H5PY(); }
  static fs::path fixture(const std::string& name) { return dir_->path / name; }
  static inline TempDir* dir_ = nullptr;
};

}  // namespace hdf5_test
