// What is particular to the safetensors format: files an independent reader (check_python.py,
// written from the specification) accepts bit for bit, files written the way the reference
// implementation writes them, the document entry that keeps a whole checkpoint, the staged and
// streamed writing paths, zero-copy maps, and exact errors on corrupt files. Generic round
// trips are the conformance kit's job.
#include "byte_flips.hpp"
#include "scratch.hpp"

#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/sharded.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kHere = CKPT_SAFETENSORS_TEST_DIR;

SaveOptions save_as_safetensors(bool fsync = false, Options format_options = {}) {
  SaveOptions o;
  o.format = "safetensors";
  o.fsync = fsync;
  o.format_options = std::move(format_options);
  return o;
}
LoadOptions load_as(bool map) {
  LoadOptions o;
  o.format = "safetensors";
  o.map = map;
  return o;
}

using ckpt_test::TempDir;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

uint64_t le64(std::string_view b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
  return v;
}

// Runs a command; returns its exit status and puts its output in `out`.
int run(const std::string& command, std::string& out) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string python(const std::string& mode, const fs::path& file, const fs::path& expected) {
  return std::string(CKPT_PYTHON) + " '" + (kHere / "check_python.py").string() + "' " + mode + " '" +
         file.string() + "' '" + expected.string() + "'";
}

const char* st_name(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::i16: return "I16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::boolean: return "BOOL";
    case DType::u16: return "U16";
    case DType::u32: return "U32";
    case DType::u64: return "U64";
    case DType::f8_e4m3fn: return "F8_E4M3";
    case DType::f8_e5m2: return "F8_E5M2";
    case DType::c64: return "C64";
    default: break;
  }
  return "?";
}

const DType kAllDtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                            DType::u8,  DType::i16, DType::i32, DType::i64,  DType::boolean};

Tensor random_tensor(DType d, Shape shape, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(d, std::move(shape));
  for (auto& b : t.mutable_bytes()) b = static_cast<std::byte>(rng());
  if (d == DType::boolean)
    for (auto& b : t.mutable_bytes()) b &= std::byte{1};
  return t;
}

std::string hex_bits(double d) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(d)));
  return buf;
}

// An attribute as check_python.py reports it: [group path, name, type, value].
json attribute_json(const std::string& path, const Attribute& a) {
  json value = std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, double>) {
          return hex_bits(x);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          json arr = json::array();
          for (double d : x) arr.push_back(hex_bits(d));
          return arr;
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          json arr = json::array();
          for (bool b : x) arr.push_back(b);
          return arr;
        } else {
          return x;
        }
      },
      a.value);
  return json::array({path, a.name, std::string(value_type_name(value_type(a.value))), value});
}

void collect_attributes(const Group& g, const std::string& path, json& out) {
  for (const auto& a : g.attributes()) out.push_back(attribute_json(path, a));
  for (const auto& c : g.children())
    if (c.is_group()) collect_attributes(c.group(), join_path(path, c.name), out);
}

// What check_python.py compares a file against, written from `doc` in memory (never through
// the plugin): every tensor's bytes in <stem>.bin, the rest in <stem>.json.
void write_expected(const Document& doc, const fs::path& stem, const json& metadata, bool with_document,
                    uint64_t alignment) {
  json tensors = json::array();
  std::string blob;
  doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
    tensors.push_back({{"name", path},
                       {"dtype", st_name(t.dtype())},
                       {"shape", t.shape()},
                       {"offset", blob.size()},
                       {"nbytes", t.nbytes()}});
    blob.append(reinterpret_cast<const char*>(t.bytes().data()), t.nbytes());
  });
  json document = nullptr;
  if (with_document) {
    json attributes = json::array();
    collect_attributes(doc, "", attributes);
    document = {{"attributes", attributes}};
  }
  json expected = {{"tensors", tensors}, {"metadata", metadata}, {"document", document}, {"alignment", alignment}};
  std::ofstream(stem.string() + ".json") << expected.dump();
  spit(stem.string() + ".bin", blob);
}

void expect_same(const Document& a, const Document& b) {
  DiffOptions exact;
  exact.ignore_meta = false;
  const DiffReport r = diff_documents(a, b, exact);
  for (const auto& e : r.entries) ADD_FAILURE() << e.path << ": " << e.detail;
}

// The order of a group's members, recursively, so tests can check that it is kept.
std::vector<std::string> member_order(const Group& g, const std::string& prefix = "") {
  std::vector<std::string> out;
  for (const auto& a : g.attributes()) out.push_back("@" + join_path(prefix, a.name));
  for (const auto& c : g.children()) {
    out.push_back(join_path(prefix, c.name));
    if (c.is_group())
      for (auto& s : member_order(c.group(), join_path(prefix, c.name))) out.push_back(s);
  }
  return out;
}

// A checkpoint-shaped document using everything: nested groups, every attribute type and
// awkward value, every dtype, a scalar, an empty tensor and an empty group.
Document nested_document() {
  std::mt19937_64 rng(42);
  Document doc;
  doc.set("producer", "ckpt-test")
      .set("epoch", 3)
      .set("big", std::numeric_limits<int64_t>::max())
      .set("small", std::numeric_limits<int64_t>::min())
      .set("lr", 0.001)
      .set("neg_zero", -0.0)
      .set("integral", 2.0)
      .set("inf", std::numeric_limits<double>::infinity())
      .set("ninf", -std::numeric_limits<double>::infinity())
      .set("nan", std::numeric_limits<double>::quiet_NaN())
      .set("nan_payload", std::bit_cast<double>(0xfff8000000000123ull))
      .set("tiny", std::numeric_limits<double>::denorm_min())
      .set("flag", Value(true))
      .set("ints", std::vector<int64_t>{1, -2, 300000, -5000000000})
      .set("floats", std::vector<double>{0.5, -1.5, 1e300, std::bit_cast<double>(0x7ff0000000000001ull)})
      .set("bools", std::vector<bool>{true, false, true})
      .set("strings", std::vector<std::string>{"a", "\u03b2\u03b3", "", std::string("nul\0in", 6), "\"q\"\\"})
      .set("empty_ints", std::vector<int64_t>{})
      .set("empty_strings", std::vector<std::string>{})
      .set("note", "quotes \" and \\ and \n newline");
  Group& state = doc.group("model").group("state");
  for (DType d : kAllDtypes) state.add_tensor(std::string("t_") + std::string(name(d)), random_tensor(d, {3, 5}, rng));
  state.add_tensor("fc1.weight", random_tensor(DType::f32, {6, 5}, rng));
  state.add_tensor("scalar", random_tensor(DType::f64, {}, rng));
  state.add_tensor("empty", random_tensor(DType::f32, {0, 4}, rng));
  state.add_tensor("Gewicht_\xc3\xa4", random_tensor(DType::bf16, {2}, rng));
  doc.group("model").group("spec").set("layers", std::vector<std::string>{"linear", "relu"});
  Group& opt = doc.group("optimizer");
  opt.set("type", "adam").set("betas", std::vector<double>{0.9, 0.999});
  opt.group("state").group("fc1.weight").add_tensor("exp_avg", random_tensor(DType::f32, {6, 5}, rng));
  doc.add_tensor("root_tensor", random_tensor(DType::i64, {2}, rng));
  doc.add_group("extra");
  return doc;
}

// Tensors and string attributes at the root only: what a plain safetensors file holds.
Document plain_document() {
  std::mt19937_64 rng(7);
  Document doc;
  // A plain file's __metadata__ is the group meta, first among the root's members.
  doc.group("meta").set("format", "pt").set("comment", "plain \u00e4");
  for (DType d : kAllDtypes) doc.add_tensor(std::string("layers.0.") + std::string(name(d)), random_tensor(d, {4, 3}, rng));
  doc.add_tensor("empty", random_tensor(DType::i32, {0}, rng));
  doc.add_tensor("scalar", random_tensor(DType::f16, {}, rng));
  return doc;
}

// What ckpt copies into __metadata__: the root's string attributes, then meta's.
json root_strings(const Document& doc) {
  json m = json::object();
  for (const auto& a : doc.attributes())
    if (auto* s = std::get_if<std::string>(&a.value)) m[a.name] = *s;
  if (const Group* meta = doc.find_group("meta"))
    for (const auto& a : meta->attributes())
      if (auto* s = std::get_if<std::string>(&a.value); s && !m.contains(a.name)) m[a.name] = *s;
  return m;
}

}  // namespace

// ---- what other safetensors readers see ---------------------------------------------------------

TEST(SafetensorsFormat, IndependentReaderAcceptsANestedDocumentBitForBit) {
  TempDir tmp;
  const Document doc = nested_document();
  const fs::path p = tmp.path / "nested.safetensors";
  write_document(doc, p, save_as_safetensors());
  json metadata = root_strings(doc);
  metadata["format"] = "pt";  // added for Hugging Face loaders, since the root has none
  write_expected(doc, tmp.path / "expected", metadata, true, 64);
  std::string out;
  EXPECT_EQ(run(python("check", p, tmp.path / "expected"), out), 0) << out;
}

TEST(SafetensorsFormat, IndependentReaderAcceptsAPlainDocumentWithNoDocumentEntry) {
  TempDir tmp;
  const Document doc = plain_document();
  const fs::path p = tmp.path / "plain.safetensors";
  write_document(doc, p, save_as_safetensors());
  write_expected(doc, tmp.path / "expected", root_strings(doc), false, 64);
  std::string out;
  EXPECT_EQ(run(python("check", p, tmp.path / "expected"), out), 0) << out;
  EXPECT_EQ(slurp(p).find("ckpt.document"), std::string::npos);
  expect_same(doc, read_document(p, load_as(true)));
}

TEST(SafetensorsFormat, ReadsWhatAnIndependentWriterWrites) {
  TempDir tmp;
  const fs::path p = tmp.path / "python.safetensors";
  std::string out;
  ASSERT_EQ(run(python("write", p, tmp.path / "expected"), out), 0) << out;
  const json expected = json::parse(std::ifstream(tmp.path / "expected.json"));
  const std::string blob = slurp(tmp.path / "expected.bin");

  for (bool map : {false, true}) {
    SCOPED_TRACE(map ? "mapped" : "copied");
    const Document doc = read_document(p, load_as(map));
    // Every tensor, bit for bit, under its name split at '/'.
    size_t seen = 0;
    for (const auto& t : expected["tensors"]) {
      const std::string name = t["name"];
      const Tensor* got = doc.find_tensor_path(name);
      ASSERT_NE(got, nullptr) << name;
      EXPECT_EQ(st_name(got->dtype()), t["dtype"].get<std::string>()) << name;
      EXPECT_EQ(got->shape(), t["shape"].get<Shape>()) << name;
      const std::string want = blob.substr(t["offset"], t["nbytes"]);
      ASSERT_EQ(got->nbytes(), want.size()) << name;
      EXPECT_EQ(std::memcmp(got->bytes().data(), want.data(), want.size()), 0) << name;
      ++seen;
    }
    EXPECT_EQ(doc.tensor_count(), seen);
    // __metadata__ entries are meta's string attributes, in the file's order; meta comes first.
    EXPECT_TRUE(doc.attributes().empty());
    const Group* meta = doc.find_group("meta");
    ASSERT_NE(meta, nullptr);
    EXPECT_EQ(doc.children().front().name, "meta");
    std::vector<std::string> names;
    for (const auto& a : meta->attributes()) names.push_back(a.name);
    EXPECT_EQ(names, (std::vector<std::string>{"format", "note", "unicode"}));
    EXPECT_EQ(std::get<std::string>(*meta->attribute("unicode")), "Gewicht_\u00e4 \u6743\u91cd");
    // Root tensors in the header's order (the reference writes it sorted by dtype, then name).
    EXPECT_EQ(doc.children()[1].name, "step");
    ASSERT_NE(doc.find_group_path("encoder/block.0"), nullptr);
    EXPECT_EQ(doc.find_group_path("encoder/block.0")->children().size(), 2u);
  }
  // As a checkpoint: the root tensors are the model's state, the groups go to extra.
  const Checkpoint c = load(p, load_as(true));
  EXPECT_NE(c.model_state.find_tensor("embed.weight"), nullptr);
  EXPECT_NE(c.extra.find_group_path("encoder/block.0"), nullptr);
}

// The reference implementation's own expected outputs (its unit tests test_serialization and
// test_empty): a header padded to 8 bytes, the data right after it.
TEST(SafetensorsFormat, ReadsTheReferenceImplementationsGoldenBytes) {
  TempDir tmp;
  std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(header.size(), 64u);
  std::string file(8, '\0');
  file[0] = 64;
  file += header;
  for (float f : {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f}) file.append(reinterpret_cast<const char*>(&f), 4);
  spit(tmp.path / "attn.safetensors", file);
  const Document doc = read_document(tmp.path / "attn.safetensors");  // chosen by extension + identify
  const Tensor* t = doc.find_tensor("attn.0");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(std::vector<float>(t->data<float>().begin(), t->data<float>().end()),
            (std::vector<float>{0, 1, 2, 3, 4, 5}));

  std::string empty = std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ";
  spit(tmp.path / "empty.safetensors", empty);
  const Document e = read_document(tmp.path / "empty.safetensors");
  EXPECT_EQ(e.tensor_count(), 0u);
  ASSERT_NE(e.find_group("meta"), nullptr);
  EXPECT_EQ(std::get<std::string>(*e.find_group("meta")->attribute("framework")), "pt");
}

// ---- what ckpt keeps ----------------------------------------------------------------------------

TEST(SafetensorsFormat, NestedDocumentRoundTripsExactlyInOrder) {
  TempDir tmp;
  const Document doc = nested_document();
  const fs::path p = tmp.path / "nested.safetensors";
  write_document(doc, p, save_as_safetensors());
  for (bool map : {false, true}) {
    const Document back = read_document(p, load_as(map));
    expect_same(doc, back);
    EXPECT_EQ(member_order(back), member_order(doc));
  }
}

TEST(SafetensorsFormat, CheckpointSaveLoadIsLosslessAndConversionDeclaresNoLoss) {
  TempDir tmp;
  Checkpoint c;
  c.producer = "test";
  c.created = "2026-01-01T00:00:00Z";
  c.user.set("run", "a").set("seed", 5);
  c.model_spec.set("layers", std::vector<std::string>{"linear"});
  c.model_state.add_tensor("fc.weight", Tensor::from<float>(DType::f32, {2, 2}, {1, 2, 3, 4}));
  c.optimizer.set("type", "sgd").set("lr", 0.1).set("step", 7);
  c.optimizer.group("state").group("fc.weight").add_tensor("momentum_buffer",
                                                         Tensor::from<float>(DType::f32, {2, 2}, {0, 0, 1, 1}));
  c.trainer.set("epoch", 2).set("metrics", std::vector<double>{0.5, 0.25});
  const fs::path p = tmp.path / "ckpt.safetensors";
  save(c, p, save_as_safetensors(true));
  LoadOptions verified = load_as(true);
  verified.verify = true;
  const Checkpoint back = load(p, verified);
  expect_same(c.to_document(), back.to_document());

  const Format f = Registry::global().get("safetensors");
  EXPECT_TRUE(plan_losses(read_document(p), f.info()).empty());
}

TEST(SafetensorsFormat, OutputIsDeterministicAndIdentifiedByContent) {
  TempDir tmp;
  write_document(nested_document(), tmp.path / "a.safetensors", save_as_safetensors());
  write_document(nested_document(), tmp.path / "b.safetensors", save_as_safetensors());
  EXPECT_EQ(slurp(tmp.path / "a.safetensors"), slurp(tmp.path / "b.safetensors"));
  fs::copy_file(tmp.path / "a.safetensors", tmp.path / "renamed.bin");
  EXPECT_EQ(open(tmp.path / "renamed.bin")->format().name, "safetensors");
}

TEST(SafetensorsFormat, DataStartsAt64AndMapGivesZeroCopyViews) {
  TempDir tmp;
  Document doc;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 4; ++i) doc.add_tensor("w" + std::to_string(i), random_tensor(DType::f32, {64, 33}, rng));
  const fs::path p = tmp.path / "a.safetensors";
  write_document(doc, p, save_as_safetensors());
  const std::string bytes = slurp(p);
  const uint64_t start = 8 + le64(bytes);
  EXPECT_EQ(start % 64, 0u);
  EXPECT_EQ(bytes.find_first_not_of(' ', bytes.find_last_of('}', start - 1) + 1), start);  // padded with spaces

  auto reader = open(p, load_as(true));
  std::optional<Tensor> a = reader->map("w0");
  std::optional<Tensor> b = reader->map("w0");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->storage_kind(), StorageKind::mapped);
  EXPECT_EQ(a->bytes().data(), b->bytes().data());  // the same bytes, not two copies
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->bytes().data()) % 64, 0u);
  reader.reset();
  EXPECT_TRUE(a->bit_equal(*doc.find_tensor("w0")));  // a view outlives its reader
  const Document loaded = read_document(p, load_as(true));
  loaded.for_each_tensor([](const std::string& path, const Tensor& t) {
    EXPECT_EQ(t.storage_kind(), StorageKind::mapped) << path;
  });
  Tensor copy = open(p, load_as(false))->read("w3");
  EXPECT_EQ(copy.storage_kind(), StorageKind::owned);
  EXPECT_TRUE(copy.bit_equal(*doc.find_tensor("w3")));
}

// A tensor after one of odd size is unaligned, so the host cannot use a view of it; slices
// still come from the mapping, box by box.
TEST(SafetensorsFormat, SlicesOfUnalignedTensorsMatchTheWhole) {
  TempDir tmp;
  std::mt19937_64 rng(5);
  Document doc;
  doc.add_tensor("odd", random_tensor(DType::u8, {3}, rng));
  doc.add_tensor("w", random_tensor(DType::f32, {4, 5, 6}, rng));
  doc.add_tensor("s", random_tensor(DType::i64, {}, rng));
  const fs::path p = tmp.path / "a.safetensors";
  write_document(doc, p, save_as_safetensors());
  auto reader = open(p, load_as(true));
  EXPECT_FALSE(reader->map("w")) << "an f32 tensor at an odd offset was mapped";
  const Tensor& w = *doc.find_tensor("w");
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes = {
      {{1, 2, 3}, {2, 3, 2}}, {{0, 0, 0}, {4, 5, 6}}, {{3, 4, 5}, {1, 1, 1}}, {{0, 1, 0}, {4, 0, 6}}};
  for (const auto& [start, count] : boxes) {
    const Tensor got = reader->read_slice("w", start, count);
    ASSERT_EQ(got.shape(), Shape(count.begin(), count.end()));
    size_t k = 0;
    for (int64_t i = 0; i < count[0]; ++i)
      for (int64_t j = 0; j < count[1]; ++j)
        for (int64_t l = 0; l < count[2]; ++l, ++k)
          EXPECT_EQ(std::bit_cast<uint32_t>(got.data<float>()[k]),
                    std::bit_cast<uint32_t>(w.data<float>()[((start[0] + i) * 5 + start[1] + j) * 6 + start[2] + l]));
  }
  EXPECT_TRUE(reader->read_slice("s", {}, {}).bit_equal(*doc.find_tensor("s")));
}

// With no staging the data start is fixed at the first tensor; a header that then outgrows its
// room gets whole blocks inserted before the data (ext4) or the data moved (tmpfs): the same
// bytes either way, and the same document as the staged path.
TEST(SafetensorsFormat, StreamedWritesGrowTheHeaderTheSameOnEveryFileSystem) {
  Document doc;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20; ++i) doc.add_tensor("w" + std::to_string(i), random_tensor(DType::f32, {1000 + i}, rng));
  // After the tensors, more header than the room the first tensor could foresee.
  doc.group("extra").set("log", std::string(300000, 'x'));
  for (int i = 0; i < 3000; ++i) doc.group("extra").add_group("g" + std::to_string(i));
  const Options streamed = {{"staging_bytes", "0"}};

  TempDir disk;
  TempDir shm("/dev/shm", "test");
  write_document(doc, disk.path / "a.safetensors", save_as_safetensors(false, streamed));
  write_document(doc, shm.path / "a.safetensors", save_as_safetensors(false, streamed));
  const std::string a = slurp(disk.path / "a.safetensors"), b = slurp(shm.path / "a.safetensors");
  EXPECT_TRUE(a == b) << "ext4 and tmpfs gave different bytes";
  const uint64_t start = 8 + le64(a);
  EXPECT_EQ(start % 4096, 64u);
  EXPECT_GT(start, uint64_t{300000});
  expect_same(doc, read_document(disk.path / "a.safetensors", load_as(true)));
  write_expected(doc, disk.path / "expected", json{{"format", "pt"}}, true, 64);
  std::string out;
  EXPECT_EQ(run(python("check", disk.path / "a.safetensors", disk.path / "expected"), out), 0) << out;

  write_document(doc, disk.path / "staged.safetensors", save_as_safetensors());
  const std::string staged = slurp(disk.path / "staged.safetensors");
  EXPECT_EQ((8 + le64(staged)) % 64, 0u);
  EXPECT_LE(staged.size(), a.size());
  expect_same(doc, read_document(disk.path / "staged.safetensors", load_as(true)));
}

TEST(SafetensorsFormat, WriterRefusesWhatSafetensorsCannotHold) {
  TempDir tmp;
  Document not_utf8;
  not_utf8.set("bytes", std::string("a\xff", 2));
  try {
    write_document(not_utf8, tmp.path / "a.safetensors", save_as_safetensors());
    ADD_FAILURE() << "a string that is not UTF-8 was written";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("attribute 'bytes' of the root group is not valid UTF-8"), std::string::npos)
        << e.what();
  }
  Document reserved;
  reserved.add_tensor("__metadata__", Tensor::from<float>(DType::f32, {1}, {1}));
  EXPECT_THROW(write_document(reserved, tmp.path / "b.safetensors", save_as_safetensors()), UnsupportedError);
  EXPECT_THROW(write_document(Document(), tmp.path / "c.safetensors", save_as_safetensors(false, {{"staging_bytes", "x"}})),
               UsageError);
  EXPECT_TRUE(fs::is_empty(tmp.path));
}

// A plain tool that rewrote a file of ours kept __metadata__ and added a tensor: the document
// entry places what it lists, the new tensor goes where its name says.
TEST(SafetensorsFormat, TensorsTheDocumentEntryDoesNotListAreKept) {
  TempDir tmp;
  Document doc;
  doc.set("epoch", 1);
  doc.group("model").add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  const fs::path p = tmp.path / "a.safetensors";
  write_document(doc, p, save_as_safetensors());
  const std::string bytes = slurp(p);
  const uint64_t n = le64(bytes);
  json header = json::parse(bytes.substr(8, n));
  const uint64_t data_size = bytes.size() - 8 - n;
  header["model/added"] = {{"dtype", "I16"}, {"shape", {3}}, {"data_offsets", {data_size, data_size + 6}}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  const int16_t added[3] = {-1, 0, 7};
  out += text + bytes.substr(8 + n) + std::string(reinterpret_cast<const char*>(added), 6);
  spit(p, out);
  const Document back = read_document(p, load_as(false));
  EXPECT_EQ(std::get<int64_t>(*back.attribute("epoch")), 1);
  const Group& model = *back.find_group("model");
  ASSERT_EQ(model.children().size(), 2u);
  EXPECT_EQ(model.children()[0].name, "w");
  EXPECT_EQ(model.children()[1].name, "added");
  EXPECT_EQ(model.find_tensor("added")->data<int16_t>()[2], 7);
}

namespace {

// `p` with its header JSON edited by `edit` (the data section unchanged).
void edit_header(const fs::path& p, const std::function<void(json&)>& edit) {
  const std::string bytes = slurp(p);
  const uint64_t n = le64(bytes);
  json header = json::parse(bytes.substr(8, n));
  edit(header);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  spit(p, out + text + bytes.substr(8 + n));
}

// Tied weights (model/b shares model/a's storage, as meta/@tensor_aliases says), an untied
// tensor of the same bytes (model/c: zero biases are equal without being tied) and another.
Document tied_document() {
  Document doc;
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  Group& model = doc.group("model");
  model.add_tensor("a", Tensor::from<float>(DType::f32, {10, 100}, v));
  model.add_tensor("b", Tensor::from<float>(DType::f32, {10, 100}, v));
  model.add_tensor("c", Tensor::from<float>(DType::f32, {10, 100}, v));
  model.add_tensor("d", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  doc.group("meta").set("tensor_aliases", std::vector<std::string>{"model/b", "model/a"});
  return doc;
}

}  // namespace

// Hugging Face's writer stores tied weights once; so does ckpt's, and records the alias so that
// the document (and a .pt written from it) gets the tie back. Equal bytes alone tie nothing.
TEST(SafetensorsFormat, TiedTensorsAreWrittenOnceAndReadBackAsAliases) {
  TempDir tmp;
  const Document doc = tied_document();
  for (const char* staging : {"16777216", "1000"}) {  // staged in memory, and streamed to the file
    SCOPED_TRACE(staging);
    const fs::path p = tmp.path / (std::string("tied") + staging + ".safetensors");
    write_document(doc, p, save_as_safetensors(false, Options{{"staging_bytes", staging}}));
    const std::string bytes = slurp(p);
    const uint64_t n = le64(bytes);
    const json header = json::parse(bytes.substr(8, n));
    EXPECT_FALSE(header.contains("model/b"));
    ASSERT_TRUE(header.contains("model/c")) << "an untied copy is written";
    EXPECT_NE(header["model/c"]["data_offsets"], header["model/a"]["data_offsets"]);
    EXPECT_EQ(json::parse(header["__metadata__"]["ckpt.aliases"].get<std::string>()), json({{"model/b", "model/a"}}));
    EXPECT_EQ(bytes.size() - 8 - n, 2 * 4000u + 8u) << "a and c once each, and d";
    for (bool map : {false, true}) {
      const Document back = read_document(p, load_as(map));
      expect_same(doc, back);
      EXPECT_EQ(member_order(back), member_order(doc));
    }
  }
  // Without meta's record, equal tensors are all written, in the document's order.
  Document untied = doc;
  untied.group("meta").erase_attribute("tensor_aliases");
  const fs::path plain = tmp.path / "untied.safetensors";
  write_document(untied, plain, save_as_safetensors());
  const std::string bytes = slurp(plain);
  const json header = json::parse(bytes.substr(8, le64(bytes)));
  EXPECT_TRUE(header.contains("model/b"));
  EXPECT_FALSE(header["__metadata__"].contains("ckpt.aliases"));
  EXPECT_EQ(member_order(read_document(plain, load_as(false))), member_order(untied));
}

TEST(SafetensorsFormat, AliasesThatAreNotOneReadingAreRefused) {
  TempDir tmp;
  const fs::path good = tmp.path / "tied.safetensors";
  write_document(tied_document(), good, save_as_safetensors());
  auto attempt = [&](const char* name, const std::function<void(json&)>& edit, const std::string& why) {
    SCOPED_TRACE(name);
    const fs::path p = tmp.path / (std::string(name) + ".safetensors");
    fs::copy_file(good, p);
    edit_header(p, edit);
    try {
      read_document(p, load_as(false));
      ADD_FAILURE() << "read";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  auto aliases = [](const json& a) { return [a](json& h) { h["__metadata__"]["ckpt.aliases"] = a.dump(); }; };
  attempt("shadowing", aliases({{"model/b", "model/a"}, {"model/c", "model/a"}}), "is also a tensor of the header (two readings)");
  attempt("no_target", aliases({{"model/b", "model/x"}}), "the header has no tensor");
  attempt("unused", aliases({{"model/b", "model/a"}, {"model/z", "model/a"}}), "alias 'model/z' is no tensor of the document");
  attempt("not_strings", aliases({{"model/b", 3}}), "names no tensor key");
  attempt("not_an_object", [](json& h) { h["__metadata__"]["ckpt.aliases"] = "[1,2]"; }, "not a JSON object");
  attempt("nested", aliases({{"model/b", {{"x", "y"}}}}), "not an object of strings");
  attempt("no_document", [](json& h) { h["__metadata__"].erase("ckpt.document"); }, "aliases in a file without ckpt's document");
  {  // Equal keys: a parser keeping the first would read another tensor than one keeping the last.
    const fs::path p = tmp.path / "twice.safetensors";
    fs::copy_file(good, p);
    edit_header(p, [](json& h) { h["__metadata__"]["ckpt.aliases"] = "{\"model/b\":\"model/a\",\"model/b\":\"model/d\"}"; });
    try {
      read_document(p, load_as(false));
      ADD_FAILURE() << "read";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("alias 'model/b' twice"), std::string::npos) << e.what();
    }
  }
}

// Every alias lists its target's bytes again, like a view repeating its storage: a small header
// naming a tensor a million times would list terabytes. Bounded as other readers bound views.
TEST(SafetensorsFormat, AliasesCannotListFarMoreThanTheFileHolds) {
  TempDir tmp;
  Document doc;
  std::vector<float> v(1 << 18);  // 1 MiB
  doc.group("model").add_tensor("w", Tensor::from<float>(DType::f32, {1 << 18}, v));
  const fs::path p = tmp.path / "bomb.safetensors";
  write_document(doc, p, save_as_safetensors());
  edit_header(p, [](json& h) {
    json aliases = json::object();
    json doc = json::parse(h["__metadata__"]["ckpt.document"].get<std::string>());
    json* model = nullptr;
    for (json& m : doc["root"]["members"])
      if (m.value("group", "") == "model") model = &m;
    for (int i = 0; i < 200; ++i) {
      aliases["model/a" + std::to_string(i)] = "model/w";
      (*model)["members"].push_back({{"tensor", "a" + std::to_string(i)}});
    }
    h["__metadata__"]["ckpt.document"] = doc.dump();
    h["__metadata__"]["ckpt.aliases"] = aliases.dump();
  });
  try {
    read_document(p, load_as(false));
    ADD_FAILURE() << "read";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("its aliases list"), std::string::npos) << e.what();
  }
  // The bound is an option, for an honest file beyond it.
  LoadOptions allowed = load_as(false);
  allowed.format_options = {{"max_expansion", std::to_string(uint64_t{1} << 30)}};
  EXPECT_EQ(read_document(p, allowed).find_group("model")->children().size(), 201u);
}

// The key ckpt records aliases under is ckpt's: a document's own string of that name is kept in
// the document entry, never copied beside it.
TEST(SafetensorsFormat, ADocumentStringNamedLikeTheAliasEntryIsKept) {
  TempDir tmp;
  Document doc = tied_document();
  doc.set("ckpt.aliases", "mine");
  doc.group("meta").set("ckpt.aliases", "also mine");
  const fs::path p = tmp.path / "named.safetensors";
  write_document(doc, p, save_as_safetensors());
  expect_same(doc, read_document(p, load_as(false)));
  Document plain;
  plain.group("meta").set("ckpt.aliases", "mine");
  plain.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  write_document(plain, tmp.path / "plain.safetensors", save_as_safetensors());
  expect_same(plain, read_document(tmp.path / "plain.safetensors", load_as(false)));
}

// The document entry is parsed into a DOM; its size in values is capped so that a hostile
// header cannot claim memory out of proportion to its bytes.
TEST(SafetensorsFormat, DocumentEntryWithTooManyValuesIsALimitError) {
  TempDir tmp;
  std::string zeros;
  for (size_t i = 0; i <= (size_t{1} << 22); ++i) zeros += "0,";
  zeros += "0";
  const std::string entry = R"({"format":"ckpt-safetensors","version":1,"root":{"attributes":[["x","int64[]",[)" +
                            zeros + "]]]}}";
  json header = {{"__metadata__", {{"ckpt.document", entry}}}};
  std::string text = header.dump();
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  spit(tmp.path / "many.safetensors", file + text);
  try {
    read_document(tmp.path / "many.safetensors", load_as(false));
    ADD_FAILURE() << "accepted";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("(__metadata__['ckpt.document']): more than 4194304 JSON values"),
              std::string::npos)
        << e.what();
  }
}

// The writer once wrote a document entry of more JSON values than its reader takes (an int64
// array of 2^22 + 1 values): it counts the entry it made as the reader does, and refuses.
TEST(SafetensorsFormat, WriterRefusesADocumentEntryItsReaderRefuses) {
  TempDir tmp;
  const fs::path p = tmp.path / "many.safetensors";
  Document doc;
  doc.set("x", std::vector<int64_t>((size_t{1} << 22) + 1, 0));
  try {
    write_document(doc, p, save_as_safetensors());
    ADD_FAILURE() << "written";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 4194304 JSON values"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(tmp.path)) << "the refused save left a file";
  Document ok;
  ok.set("x", std::vector<int64_t>((size_t{1} << 22) - 64, 0));
  write_document(ok, p, save_as_safetensors());
  expect_same(ok, read_document(p, load_as(false)));
}

// A 0 once hid any product of the other dimensions behind an empty tensor: [0, 2^62, 2^62]
// passed the header's check as 0 bytes. The non-zero dimensions are bounded alone, as ckpt
// bounds every tensor's; an empty tensor within the bound still reads.
TEST(SafetensorsFormat, AZeroDimensionHidesNoProductPast2To62) {
  TempDir tmp;
  auto file_of = [](const std::string& shape) {
    const std::string text = R"({"t":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})";
    std::string file(8, '\0');
    for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
    return file + text;
  };
  spit(tmp.path / "hidden.safetensors", file_of("[0,4611686018427387904,4611686018427387904]"));
  try {
    read_document(tmp.path / "hidden.safetensors", load_as(false));
    ADD_FAILURE() << "accepted";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("holds more than 2^62 bytes (its non-zero dimensions alone)"), std::string::npos)
        << e.what();
  }
  spit(tmp.path / "empty.safetensors", file_of("[0,1024,1024]"));
  const Document d = read_document(tmp.path / "empty.safetensors", load_as(false));
  ASSERT_TRUE(d.find_tensor("t"));
  EXPECT_EQ(d.find_tensor("t")->shape(), (Shape{0, 1024, 1024}));
}

// Listing must not read tensor data: after opening and listing a 1 GiB file (sparse, so its
// data pages can only enter the page cache by being read), none of them is resident.
TEST(SafetensorsFormat, ListingAOneGiBFileReadsOnlyItsHeader) {
  TempDir tmp;
  const fs::path p = tmp.path / "big.safetensors";
  const uint64_t n = uint64_t{1} << 30;
  std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[1024],"data_offsets":[0,1024]},)"
                       R"("huge":{"dtype":"F32","shape":[268435200],"data_offsets":[1024,1073741824]}})";
  header.append(4096 - 8 - header.size(), ' ');  // the data starts on the second page
  std::string head(8, '\0');
  for (int i = 0; i < 8; ++i) head[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  spit(p, head + header);
  fs::resize_file(p, 4096 + n);

  // Named, not identified: the registry's identify() reads the file's first bytes itself.
  auto reader = open(p, load_as(true));
  const Document& tree = reader->tree();
  ASSERT_NE(tree.find_tensor("huge"), nullptr);
  EXPECT_EQ(tree.find_tensor("huge")->shape(), (Shape{268435200}));

  const int fd = ::open(p.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const size_t size = 4096 + n;
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(m, MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  ASSERT_EQ(::mincore(m, size, resident.data()), 0);
  size_t data_pages = 0;
  std::string which;
  for (size_t i = 4096 / page; i < resident.size(); ++i) {
    if (resident[i] & 1) which += " " + std::to_string(i);
    data_pages += resident[i] & 1;
  }
  // Besides the header, opening looks for an HDF5 superblock at 512 * 2^k (a polyglot's second
  // reading): one page at each, 19 for this file, and nothing by readahead.
  EXPECT_LE(data_pages, 19u) << "pages of tensor data entered the page cache while listing:" << which;
  // Reading one small tensor touches only its own page.
  EXPECT_EQ(reader->read("a").nbytes(), 1024u);
  ::munmap(m, size);
  ::close(fd);
}

// corrupt/ holds hand-made bad files (make_corrupt.py); expected.tsv says what each must raise.
TEST(SafetensorsFormat, CorruptFilesGiveTypedErrorsNamingTheFileAndThePlace) {
  const fs::path dir = kHere / "corrupt";
  std::ifstream tsv(dir / "expected.tsv");
  ASSERT_TRUE(tsv) << "missing " << dir / "expected.tsv";
  std::set<std::string> listed;
  std::string line;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    ASSERT_GE(fields.size(), 3u) << line;
    const std::string& file = fields[0];
    const std::string& want = fields[1];
    listed.insert(file);
    for (bool map : {false, true}) {
      std::string got = "no exception", message;
      try {
        read_document(dir / file, load_as(map));
      } catch (const LimitError& e) {
        got = "LimitError", message = e.what();
      } catch (const FormatError& e) {
        got = "FormatError", message = e.what();
      } catch (const UnsupportedError& e) {
        got = "UnsupportedError", message = e.what();
      } catch (const std::exception& e) {
        got = std::string("another exception: ") + e.what();
      }
      EXPECT_EQ(got, want) << file << ": " << message;
      for (size_t i = 2; i < fields.size(); ++i)
        EXPECT_NE(message.find(fields[i]), std::string::npos)
            << file << ": message lacks \"" << fields[i] << "\"\n  message: " << message;
      EXPECT_NE(message.find(file), std::string::npos) << "the message names the file: " << message;
      if (!map) std::cout << message << "\n";
    }
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") {
      EXPECT_TRUE(listed.count(e.path().filename().string())) << e.path().filename() << " has no line in expected.tsv";
    }
  }
  EXPECT_GE(listed.size(), 40u);
}

namespace {

// Reads a whole document, tensors included; true when it parsed, else `error` is empty for a
// typed ckpt error and the message of anything else.
bool read_all(const fs::path& p, std::string& error) {
  try {
    read_document(p, load_as(true));
    return true;
  } catch (const FormatError&) {  // LimitError included
    error.clear();
  } catch (const UnsupportedError&) {
    error.clear();
  } catch (const std::exception& e) {
    error = e.what();
  }
  return false;
}

std::string small_valid_file(const fs::path& dir) {
  Document doc;
  doc.set("name", "x").set("ints", std::vector<int64_t>{1, -300}).set("f", 0.5);
  Group& g = doc.group("model");
  g.add_tensor("w", Tensor::from<float>(DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6}));
  g.add_tensor("s", Tensor::from<int64_t>(DType::i64, {}, {-9}));
  g.add_group("empty");
  doc.add_tensor("b", Tensor::from<uint8_t>(DType::u8, {3}, {1, 2, 3}));
  write_document(doc, dir / "valid.safetensors", save_as_safetensors());
  return slurp(dir / "valid.safetensors");
}

}  // namespace

TEST(SafetensorsFormat, EveryTruncationIsATypedError) {
  TempDir tmp;
  const std::string valid = small_valid_file(tmp.path);
  const auto keep_loaded = open(tmp.path / "valid.safetensors", load_as(true));  // no reload per file
  const fs::path p = tmp.path / "cut.safetensors";
  for (size_t len = 0; len < valid.size(); ++len) {
    spit(p, std::string_view(valid).substr(0, len));
    std::string error = "no error";
    EXPECT_FALSE(read_all(p, error)) << "a " << len << "-byte prefix was accepted";
    EXPECT_TRUE(error.empty()) << "prefix of " << len << " bytes: " << error;
  }
}

TEST(SafetensorsFormat, FlippedHeaderBytesGiveTypedErrorsOrValidDocuments) {
  TempDir tmp;
  const std::string valid = small_valid_file(tmp.path);
  const auto keep_loaded = open(tmp.path / "valid.safetensors", load_as(true));
  const fs::path p = tmp.path / "flipped.safetensors";
  const size_t header_end = 8 + le64(valid);  // tensor bytes are opaque: flipping them changes only values
  ckpt_test::ByteFlips flips;
  flips.end = header_end;
  flips.masks = {0x01, 0x20, 0x80, 0xff};
  ckpt_test::flip_every_byte(valid, p, flips, [&](size_t at, uint8_t mask) {
    std::string error;
    read_all(p, error);
    EXPECT_TRUE(error.empty()) << "byte " << at << " ^ " << int(mask) << ": " << error;
  });
}

// golden/nested.safetensors is this writer's output for golden_document(), checked by the
// independent reader: a change to the bytes the writer produces must be deliberate.
TEST(SafetensorsFormat, WriterReproducesTheGoldenFile) {
  Document doc;
  doc.set("producer", "golden").set("epoch", 2).set("lr", 0.125).set("tags", std::vector<std::string>{"a", "b"});
  Group& state = doc.group("model").group("state");
  state.add_tensor("fc1.weight", Tensor::from<float>(DType::f32, {2, 3}, {1, -2, 3.5f, 0, -0.0f, 1e-3f}));
  state.add_tensor("fc1.bias", Tensor::from<int64_t>(DType::i64, {2}, {-1, 1}));
  state.add_tensor("mask", Tensor::from<uint8_t>(DType::boolean, {3}, {1, 0, 1}));
  doc.group("optimizer").set("type", "sgd");
  const fs::path golden = kHere / "golden" / "nested.safetensors";
  TempDir tmp;
  const fs::path p = tmp.path / "nested.safetensors";
  write_document(doc, p, save_as_safetensors());
  if (std::getenv("CKPT_UPDATE_GOLDEN")) fs::copy_file(p, golden, fs::copy_options::overwrite_existing);
  EXPECT_TRUE(slurp(p) == slurp(golden)) << "the writer's bytes differ from " << golden
                                         << " (CKPT_UPDATE_GOLDEN=1 rewrites it after a deliberate change)";
  json metadata = root_strings(doc);
  metadata["format"] = "pt";
  write_expected(doc, tmp.path / "expected", metadata, true, 64);
  std::string out;
  EXPECT_EQ(run(python("check", golden, tmp.path / "expected"), out), 0) << out;
  expect_same(doc, read_document(golden, load_as(true)));
}

// ---- Hugging Face sharded checkpoints ------------------------------------------------------

namespace {

std::string hf_shards(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "hf_shards.py").string() + " " + args;
}

// What a sharded conversion of `doc` reads back as, but for the hashes it records: Hugging
// Face's meta/@format beside the document's own.
void expect_sharded(const Document& doc, const fs::path& dir) {
  Document with_format = doc;
  with_format.group("meta").set("format", "pt");
  Document got = read_document(dir);
  ASSERT_TRUE(got.find_group_path("meta/integrity")) << dir << " records no hashes";
  got.group("meta").erase("integrity");
  expect_same(with_format, got);
}

ConvertOptions by_size(uint64_t max_bytes) {
  ConvertOptions o;
  o.to = "safetensors";
  o.fsync = false;
  o.max_shard_bytes = max_bytes;
  return o;
}

}  // namespace

// A folder written as Hugging Face writes one reads as one document, by the folder or by its
// index, with every tensor's bytes and the shards' shared __metadata__.
TEST(SafetensorsShards, AHuggingFaceShardedCheckpointReadsAsOneDocument) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run(hf_shards("write " + tmp.path.string()), out), 0) << out;
  const Document all = read_document(tmp.path / "all.safetensors");
  for (const fs::path& p : {tmp.path, tmp.path / "model.safetensors.index.json"}) {
    SCOPED_TRACE(p.string());
    const Document doc = read_document(p);
    size_t n = 0;
    all.for_each_tensor([&](const std::string& path, const Tensor& t) {
      const Tensor* got = doc.find_tensor_path(path);
      ASSERT_TRUE(got) << path;
      EXPECT_EQ(got->dtype(), t.dtype()) << path;
      EXPECT_EQ(got->shape(), t.shape()) << path;
      EXPECT_TRUE(std::equal(t.bytes().begin(), t.bytes().end(), got->bytes().begin(), got->bytes().end())) << path;
      ++n;
    });
    EXPECT_EQ(n, 7u);
    EXPECT_EQ(doc.tensor_count(), 7u);
    EXPECT_EQ(std::get<std::string>(*doc.find_group("meta")->attribute("format")), "pt");
  }
  // And as any other input: converted to one file, then back to shards.
  ConvertOptions one;
  one.fsync = false;
  convert(tmp.path, tmp.path / "one.msgpack", one);
  EXPECT_EQ(read_document(tmp.path / "one.msgpack").tensor_count(), 7u);
}

// ckpt writes shards as Hugging Face's writer does (hf_shards.py check): greedy in document
// order, a tensor above the limit alone, the weight_map sorted, total_size exact; reading the
// folder back gives the document; a later save with one shard leaves model.safetensors alone.
TEST(SafetensorsShards, ConvertWritesTheLayoutHuggingFaceWrites) {
  TempDir tmp;
  Document doc = nested_document();
  std::mt19937_64 rng(3);
  doc.group("model").group("state").add_tensor("huge", random_tensor(DType::f32, {40, 40}, rng));  // 6400 bytes
  write_document(doc, tmp.path / "src.msgpack");
  const fs::path dir = tmp.path / "out";
  const ConvertReport r = convert(tmp.path / "src.msgpack", dir, by_size(1000));
  EXPECT_EQ(r.tensors, doc.tensor_count());
  std::ofstream order(tmp.path / "order.txt");
  doc.for_each_tensor([&](const std::string& p, const Tensor&) { order << p << "\n"; });
  order.close();
  std::string out;
  EXPECT_EQ(run(hf_shards("check " + dir.string() + " 1000 " + (tmp.path / "order.txt").string()), out), 0) << out;
  size_t shards = 0;
  for (const auto& e : fs::directory_iterator(dir)) shards += e.path().extension() == ".safetensors";
  EXPECT_GE(shards, 2u);
  expect_sharded(doc, dir);
  // One shard: the plain file, and nothing of the sharded save left; the user's own files stay,
  // whatever they are called.
  for (const char* mine : {"notes.txt", "model-mine!-of-notes.safetensors", "model-00001-of-00002.safetensors.bak"})
    spit(dir / mine, "mine");
  convert(tmp.path / "src.msgpack", dir, by_size(uint64_t{1} << 30));
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"model.safetensors", "notes.txt", "model-mine!-of-notes.safetensors",
                                         "model-00001-of-00002.safetensors.bak"}));
  for (const char* mine : {"notes.txt", "model-mine!-of-notes.safetensors", "model-00001-of-00002.safetensors.bak"})
    fs::remove(dir / mine);
  EXPECT_EQ(run(hf_shards("check " + dir.string() + " 1000"), out), 0) << out;
  expect_sharded(doc, dir);
  // A folder with both an index and model.safetensors has two readings: refused.
  convert(tmp.path / "src.msgpack", tmp.path / "both", by_size(1000));
  fs::copy_file(dir / "model.safetensors", tmp.path / "both" / "model.safetensors");
  EXPECT_THROW(read_document(tmp.path / "both"), FormatError);
  // Shards are Hugging Face's safetensors layout, nothing else.
  ConvertOptions wrong = by_size(1000);
  wrong.to = "msgpack";
  EXPECT_THROW(convert(tmp.path / "src.msgpack", tmp.path / "mp", wrong), UsageError);
  EXPECT_EQ(parse_byte_size("5GB"), 5000000000u);
  EXPECT_EQ(parse_byte_size("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("500MB"), 500000000u);
  EXPECT_THROW(parse_byte_size("5 parsecs"), UsageError);
}

// An index is text anyone can write: it never makes ckpt read outside its folder, and the
// shards must hold exactly what it says, agreeing with each other.
// Hugging Face's index lists every key under a shard whose header holds it: shards store tied
// tensors in full, and the document still reads back with its ties recorded.
TEST(SafetensorsShards, TiedTensorsAreStoredInFullInShards) {
  TempDir tmp;
  const Document doc = tied_document();
  write_document(doc, tmp.path / "src.msgpack");
  const fs::path dir = tmp.path / "out";
  convert(tmp.path / "src.msgpack", dir, by_size(5000));
  const json index = json::parse(slurp(dir / "model.safetensors.index.json"));
  for (const auto& [key, shard] : index["weight_map"].items()) {
    const std::string bytes = slurp(dir / shard.get<std::string>());
    const json header = json::parse(bytes.substr(8, le64(bytes)));
    EXPECT_TRUE(header.contains(key)) << key << " in " << shard;
    if (header.contains("__metadata__")) {
      EXPECT_FALSE(header["__metadata__"].contains("ckpt.aliases"));
    }
  }
  expect_sharded(doc, dir);
}

// A sharded output records the hashes of what it holds, as every file convert writes does:
// verify checks every shard's bytes, whether the source recorded hashes or not, and names the
// tensor whose shard was damaged.
TEST(SafetensorsShards, ShardedOutputsRecordHashesThatVerify) {
  TempDir tmp;
  Document doc = nested_document();
  std::mt19937_64 rng(5);
  doc.group("model").group("state").add_tensor("huge", random_tensor(DType::f32, {40, 40}, rng));
  Document hashed = doc;
  add_integrity(hashed);
  for (const auto& [name, src] : {std::pair{"plain", doc}, std::pair{"hashed", hashed}}) {
    SCOPED_TRACE(name);
    const fs::path in = tmp.path / (std::string(name) + ".msgpack");
    write_document(src, in);
    const fs::path dir = tmp.path / (std::string(name) + "-shards");
    convert(in, dir, by_size(1000));
    const VerifyReport r = verify(*open(dir));
    EXPECT_TRUE(r.has_integrity);
    EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems.front());
    EXPECT_EQ(r.tensors_checked, doc.tensor_count());
    // The last byte of the largest shard's data: a tensor's, which verify must name.
    fs::path biggest;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors" && (biggest.empty() || fs::file_size(e.path()) > fs::file_size(biggest)))
        biggest = e.path();
    std::string bytes = slurp(biggest);
    bytes.back() = static_cast<char>(bytes.back() ^ 1);
    spit(biggest, bytes);
    const VerifyReport bad = verify(*open(dir));
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.problems.front().find("model/state/huge"), std::string::npos) << bad.problems.front();
  }
}

// A save goes through the staging of ckpt's own sharded saves (ckpt/sharded.hpp): killed before
// its commit, the folder is the previous checkpoint, whole, beside the user's files; the next
// save takes over the dead one's staging folder. The folder's other files, and one put there
// while a save runs, stay; so does a folder of other files that holds no model yet.
TEST(SafetensorsShards, AKilledSaveLeavesThePreviousCheckpointAndTheFolderKeepsItsOtherFiles) {
  TempDir tmp;
  auto make = [](bool changed) {
    Document doc = nested_document();
    std::mt19937_64 rng(11);
    Tensor huge = random_tensor(DType::f32, {40, 40}, rng);
    if (changed) huge.mutable_bytes()[0] ^= std::byte{1};
    doc.group("model").group("state").add_tensor("huge", std::move(huge));
    return doc;
  };
  write_document(make(false), tmp.path / "before.msgpack");
  write_document(make(true), tmp.path / "after.msgpack");
  const fs::path dir = tmp.path / "out";
  convert(tmp.path / "before.msgpack", dir, by_size(1000));
  fs::create_directories(dir / "sub");
  spit(dir / "config.json", "{}");
  spit(dir / "sub" / "tokenizer.json", "tok");
  auto files = [&] {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) m[e.path().lexically_relative(dir).string()] = slurp(e.path());
    return m;
  };
  const auto before = files();
  ASSERT_GE(before.size(), 5u);  // two shards or more, the index and the user's two files
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ConvertOptions o = by_size(1000);
    o.progress = [](uint64_t done, uint64_t total) {
      if (done * 2 >= total) ::raise(SIGKILL);
    };
    try {
      convert(tmp.path / "after.msgpack", dir, o);
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the save was not killed mid-way";
  EXPECT_TRUE(fs::is_directory(sharded::staging_folder(dir))) << "the killed save had staged nothing";
  EXPECT_TRUE(files() == before) << "the killed save changed the folder";
  expect_sharded(make(false), dir);
  // The next save: the new checkpoint, the user's files, and a file put in while it ran.
  ConvertOptions o = by_size(1000);
  bool once = false;
  o.progress = [&](uint64_t, uint64_t) {
    if (!once) spit(dir / "late.txt", "late");
    once = true;
  };
  convert(tmp.path / "after.msgpack", dir, o);
  expect_sharded(make(true), dir);
  EXPECT_FALSE(fs::exists(sharded::staging_folder(dir)));
  EXPECT_EQ(slurp(dir / "config.json"), "{}");
  EXPECT_EQ(slurp(dir / "sub" / "tokenizer.json"), "tok");
  EXPECT_EQ(slurp(dir / "late.txt"), "late");
  for (const char* mine : {"config.json", "sub", "late.txt"}) fs::remove_all(dir / mine);
  std::string out;
  EXPECT_EQ(run(hf_shards("check " + dir.string() + " 1000"), out), 0) << out;
  // A model's folder that holds no shards yet (its config, the pytorch_model.bin they are made
  // from, a FIFO), private: the shards join its files, and it stays private. Named as ".", and
  // through a symlink, it is the same folder (the staging folder beside it, not inside).
  const fs::path other = tmp.path / "other";
  fs::create_directories(other);
  spit(other / "notes.txt", "mine");
  spit(other / "pytorch_model.bin", "weights");
  ASSERT_EQ(::mkfifo((other / "pipe").c_str(), 0600), 0);
  fs::permissions(other, fs::perms::owner_all);
  convert(tmp.path / "after.msgpack", other, by_size(1000));
  expect_sharded(make(true), other);
  EXPECT_EQ(slurp(other / "notes.txt"), "mine");
  EXPECT_EQ(slurp(other / "pytorch_model.bin"), "weights");
  EXPECT_TRUE(fs::is_fifo(other / "pipe"));
  EXPECT_EQ(fs::status(other).permissions(), fs::perms::owner_all);
  {
    const fs::path was = fs::current_path();
    fs::current_path(other);
    convert(tmp.path / "before.msgpack", ".", by_size(1000));
    fs::current_path(was);
  }
  expect_sharded(make(false), other);
  fs::create_directory_symlink(other, tmp.path / "link");
  convert(tmp.path / "after.msgpack", tmp.path / "link", by_size(1000));
  EXPECT_TRUE(fs::is_symlink(tmp.path / "link"));
  expect_sharded(make(true), other);
  EXPECT_EQ(slurp(other / "notes.txt"), "mine");
  EXPECT_FALSE(fs::exists(sharded::staging_folder(other)));
  // Nor into a sharded checkpoint of ckpt's: two checkpoints of one folder.
  ConvertOptions ckpt_layout;
  ckpt_layout.to = "safetensors";
  ckpt_layout.fsync = false;
  ckpt_layout.shards = 2;
  convert(tmp.path / "after.msgpack", tmp.path / "ckpt-layout", ckpt_layout);
  EXPECT_THROW(convert(tmp.path / "after.msgpack", tmp.path / "ckpt-layout", by_size(1000)), UsageError);
  EXPECT_TRUE(sharded::is_sharded(tmp.path / "ckpt-layout"));
}

TEST(SafetensorsShards, AnIndexNeverLeavesItsFolderAndMustAgreeWithItsShards) {
  TempDir top;
  const TempDir tmp(top.path, "test");  // the checkpoint's folder, inside one that holds a shard beside it
  std::string out;
  ASSERT_EQ(run(hf_shards("write " + tmp.path.string()), out), 0) << out;
  const fs::path index = tmp.path / "model.safetensors.index.json";
  const json good = json::parse(slurp(index));
  // A shard outside the folder, which must never be opened.
  fs::create_directories(tmp.path / "sub");
  fs::copy_file(tmp.path / "model-00003-of-00003.safetensors", tmp.path / "sub" / "model-00003-of-00003.safetensors");
  fs::copy_file(tmp.path / "model-00003-of-00003.safetensors", top.path / ("outside-" + tmp.path.filename().string() + ".safetensors"));
  auto refused = [&](const json& j, const std::string& why) {
    SCOPED_TRACE(why);
    spit(index, j.dump());
    try {
      read_document(tmp.path);
      ADD_FAILURE() << "read";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  for (const std::string& f : {"../outside-" + tmp.path.filename().string() + ".safetensors", std::string("/etc/hostname"),
                               std::string("sub/model-00003-of-00003.safetensors"), std::string(".."), std::string("")}) {
    json j = good;
    j["weight_map"]["lm_head.weight"] = f;
    refused(j, "not a file beside the index");
  }
  {
    json j = good;  // a tensor the index puts in a shard that does not hold it
    j["weight_map"]["step"] = "model-00001-of-00003.safetensors";
    refused(j, "lacks 'step'");
  }
  {
    json j = good;  // a shard's tensor the index does not name
    j["weight_map"].erase("lm_head.weight");
    refused(j, "holds 'lm_head.weight'");
  }
  {
    json j = good;
    j["metadata"]["total_size"] = j["metadata"]["total_size"].get<uint64_t>() + 1;
    refused(j, "metadata.total_size says");
  }
  refused(json::parse("{\"weight_map\": {}}"), "no weight_map");
  {
    json j = good;
    j["metadata"]["total_size"] = "12";
    refused(j, "not a number of bytes");
  }
  {  // A shard that is a link out of the folder is not followed.
    fs::rename(tmp.path / "model-00003-of-00003.safetensors", top.path / "elsewhere.safetensors");
    fs::create_symlink(top.path / "elsewhere.safetensors", tmp.path / "model-00003-of-00003.safetensors");
    refused(good, "outside the index's folder");
    fs::remove(tmp.path / "model-00003-of-00003.safetensors");
    fs::rename(top.path / "elsewhere.safetensors", tmp.path / "model-00003-of-00003.safetensors");
  }
  spit(index, std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_THROW(read_document(tmp.path), FormatError);
  // Shards whose __metadata__ disagree: which one is the checkpoint's?
  spit(index, good.dump());
  EXPECT_EQ(read_document(tmp.path).tensor_count(), 7u);
  std::string shard = slurp(tmp.path / "model-00002-of-00003.safetensors");
  const size_t at = shard.find("\"format\":\"pt\"");
  ASSERT_NE(at, std::string::npos);
  shard.replace(at, 13, "\"format\":\"np\"");
  spit(tmp.path / "model-00002-of-00003.safetensors", shard);
  try {
    read_document(tmp.path);
    ADD_FAILURE() << "read";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("the shards of one checkpoint must agree"), std::string::npos) << e.what();
  }
}

// ---- the writer's bytes, kept across the move onto the SDK's tree and skeleton codec ---------

namespace {

// Names that JSON must escape, in groups, tensors and attributes.
Document escaped_names_document() {
  Document doc;
  doc.set("q\"uote", "back\\slash").set("ctl\x01\x1f", std::vector<std::string>{"\t", "\x7f", "\xe2\x82\xac"});
  Group& g = doc.group("g \"1\"").group("tab\there");
  g.set("slash\\", 1.5).set("nl\n", std::vector<double>{});
  g.add_tensor("w\"\\\x02", Tensor::from<float>(DType::f32, {1}, {1}));
  doc.add_group("empty");
  doc.group("also_empty").set("only", Value(false));
  return doc;
}

// Groups nested ten deep, each with a tensor, and an empty one at the bottom.
Document deep_document() {
  Document doc;
  Group* g = &doc.group("l0");
  for (int i = 1; i < 10; ++i) {
    g->set("depth", int64_t{i});
    g->add_tensor("t", Tensor::from<int32_t>(DType::i32, {1}, {i}));
    g = &g->group("l" + std::to_string(i));
  }
  return doc;
}

// A meta/integrity record of the tensors written, in the form convert records it: written as the
// compact kIntegrityKey entry in a plain file, in the document entry otherwise.
Document with_integrity(Document doc, bool plain) {
  std::vector<std::string> paths, digests;
  doc.for_each_tensor([&](const std::string& path, const Tensor&) {
    paths.push_back(path);
    char d[17];
    std::snprintf(d, sizeof d, "%016llx", static_cast<unsigned long long>(paths.size() * 0x9e3779b97f4a7c15ull));
    digests.push_back(d);
  });
  Group& integrity = doc.group("meta").group("integrity");
  integrity.set("algorithm", "xxh3_64").set("paths", paths).set("digests", digests);
  integrity.set("manifest", "0123456789abcdef").set("manifest_encoding", plain ? "ckpt-manifest-2" : "other");
  return doc;
}

}  // namespace

// The bytes and refusals of the writer as ckpt wrote them before the safetensors plugin moved
// onto the SDK's tree and skeleton codec (golden/writer/, made by that build): the move changed
// no byte. Each case is a file or, for a document safetensors cannot hold, the error's text.
// CKPT_UPDATE_GOLDEN=1 rewrites them after a deliberate change.
TEST(SafetensorsFormat, WriterBytesAreThoseOfTheGoldenCases) {
  Document non_utf8_attribute;
  non_utf8_attribute.group("g").set("s", std::string("bad \xff byte"));
  Document non_utf8_array;
  non_utf8_array.set("ok", "fine").set("a", std::vector<std::string>{"x", "\xc3("});
  Document non_utf8_group;
  non_utf8_group.group("bad\xfe").add_tensor("w", Tensor::from<float>(DType::f32, {1}, {1}));
  Document non_utf8_tensor;
  non_utf8_tensor.group("g").add_tensor("w\x80", Tensor::from<float>(DType::f32, {1}, {1}));
  Document non_utf8_name;
  non_utf8_name.set("n\xff", int64_t{1});
  Document root_strings_only;
  root_strings_only.set("format", "np").set("z", "last").set("a", "first");
  root_strings_only.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  const std::vector<std::pair<std::string, Document>> cases = {
      {"nested", nested_document()},
      {"plain", plain_document()},
      {"escaped_names", escaped_names_document()},
      {"deep", deep_document()},
      {"tied", tied_document()},
      {"plain_integrity", with_integrity(plain_document(), true)},
      {"nested_integrity", with_integrity(nested_document(), false)},
      {"root_strings", root_strings_only},
      {"empty", Document()},
      {"non_utf8_attribute", non_utf8_attribute},
      {"non_utf8_array", non_utf8_array},
      {"non_utf8_group", non_utf8_group},
      {"non_utf8_tensor", non_utf8_tensor},
      {"non_utf8_name", non_utf8_name},
  };
  const fs::path dir = kHere / "golden" / "writer";
  const bool update = std::getenv("CKPT_UPDATE_GOLDEN") != nullptr;
  if (update) fs::create_directories(dir);
  TempDir tmp;
  size_t files = 0;
  for (const auto& [name, doc] : cases) {
    // Staged in memory and, with a staging limit of 64 bytes, streamed: the data start the
    // streamed writer fixes early comes from the document entry written so far.
    for (const char* staging : {"16777216", "64"}) {
      const std::string stem = name + (std::string(staging) == "64" ? "_streamed" : "");
      SCOPED_TRACE(stem);
      const fs::path p = tmp.path / (stem + ".safetensors");
      std::string got;
      try {
        write_document(doc, p, save_as_safetensors(false, Options{{"staging_bytes", staging}}));
        got = slurp(p);
        ++files;
      } catch (const Error& e) {
        const char* type = dynamic_cast<const UnsupportedError*>(&e) ? "UnsupportedError"
                           : dynamic_cast<const LimitError*>(&e)     ? "LimitError"
                           : dynamic_cast<const FormatError*>(&e)    ? "FormatError"
                           : dynamic_cast<const UsageError*>(&e)     ? "UsageError"
                                                                     : "Error";
        got = std::string("error: ") + type + ": " + e.what() + "\n";
        // Errors name the file being written (not the temporary it is written under), which
        // lives in a scratch folder.
        EXPECT_EQ(got.find("ckpt-tmp"), std::string::npos) << got;
        for (size_t at; (at = got.find("'" + p.string() + "'")) != std::string::npos;)
          got.replace(at, p.string().size() + 2, "'<file>'");
      }
      const fs::path golden = dir / (stem + (got.starts_with("error: ") ? ".error" : ".safetensors"));
      if (update) spit(golden, got);
      ASSERT_TRUE(fs::exists(golden)) << golden;
      EXPECT_TRUE(got == slurp(golden)) << "the writer's output differs from " << golden;
    }
  }
  EXPECT_EQ(files, 2 * 9u);
}
