// Saving, loading, converting and diffing through the in-tree json and msgpack plugins.
#include "scratch.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/plugin_abi.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

using ckpt_test::TempDir;

Checkpoint sample() {
  Checkpoint c;
  std::mt19937 rng(7);
  std::normal_distribution<float> n;
  Tensor w = Tensor::empty(DType::f32, {16, 8});
  for (float& x : w.mutable_data<float>()) x = n(rng);
  c.model_state.add_tensor("fc.weight", w);
  c.model_state.add_tensor("fc.bias", Tensor::zeros(DType::f32, {16}));
  c.model_state.add_tensor("bn.num_batches_tracked", Tensor::from<int64_t>(DType::i64, {}, {7}));
  c.model_state.add_tensor("half", Tensor::from<uint16_t>(DType::bf16, {2}, {0x3f80, 0xc000}));
  c.model_spec.set("type", "mlp");
  c.optimizer.set("type", "sgd").set("lr", 0.1);
  c.optimizer.group("state").group("fc.weight").add_tensor("momentum_buffer", Tensor::zeros(DType::f32, {16, 8}));
  c.trainer.set("epoch", 3).set("loss", 0.25);
  return c;
}

size_t files_in(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

class Formats : public ::testing::TestWithParam<std::string> {};

TEST_P(Formats, SaveLoadVerifyIsBitExact) {
  TempDir tmp;
  fs::path p = tmp.path / ("c." + GetParam());
  Checkpoint c = sample();
  save(c, p, {.format = GetParam()});
  LoadOptions lo;
  lo.verify = true;
  Checkpoint back = load(p, lo);
  EXPECT_TRUE(diff_documents(c.to_document(), back.to_document()).identical());
  auto rep = verify(*open(p));
  EXPECT_TRUE(rep.has_integrity);
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.tensors_checked, 5u);
}

TEST_P(Formats, AFailedSaveLeavesThePreviousFileAndNoTemporary) {
  TempDir tmp;
  fs::path p = tmp.path / ("c." + GetParam());
  save(sample(), p, {.format = GetParam()});
  auto before = fs::file_size(p);
  Document broken = sample().to_document();
  broken.group("extra").add_tensor("unread", Tensor(DType::f32, {4}, nullptr));  // no bytes
  EXPECT_THROW(write_document(broken, p, {.format = GetParam()}), UsageError);
  EXPECT_EQ(fs::file_size(p), before);
  EXPECT_EQ(files_in(tmp.path), 1u);
  LoadOptions lo;
  lo.verify = true;
  EXPECT_NO_THROW(load(p, lo));
}

TEST(Errors, AFailedSaveNamesTheFileNotItsTemporary) {
  // The plugin writes to a temporary beside the file and sees only that name; the user gave p.
  TempDir tmp;
  const fs::path p = tmp.path / "c.json";
  Document doc = sample().to_document();
  doc.group("extra").set("note", std::string("\xff\xfe not text"));
  try {
    write_document(doc, p);
    ADD_FAILURE() << "a string that is not UTF-8 was written as json";
  } catch (const UnsupportedError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'" + p.string() + "'"), std::string::npos) << m;
    EXPECT_EQ(m.find("ckpt-tmp"), std::string::npos) << m;
  }
  EXPECT_EQ(files_in(tmp.path), 0u);
}

TEST_P(Formats, ChosenByExtensionAndByContent) {
  TempDir tmp;
  fs::path p = tmp.path / ("c." + GetParam());
  save(sample(), p);  // format from the extension
  EXPECT_EQ(open(p)->format().name, GetParam());
  fs::path renamed = tmp.path / "no-extension";
  fs::copy_file(p, renamed);
  EXPECT_EQ(open(renamed)->format().name, GetParam());  // identify over all formats
}

INSTANTIATE_TEST_SUITE_P(InTree, Formats, ::testing::Values("json", "msgpack"));

TEST(Convert, JsonToMsgpackToJsonIsIdentical) {
  TempDir tmp;
  save(sample(), tmp.path / "a.json");
  auto r1 = convert(tmp.path / "a.json", tmp.path / "b.msgpack");
  EXPECT_EQ(r1.from_format, "json");
  EXPECT_EQ(r1.to_format, "msgpack");
  EXPECT_TRUE(r1.losses.empty());
  EXPECT_TRUE(r1.source_verified);
  convert(tmp.path / "b.msgpack", tmp.path / "c.json");
  EXPECT_TRUE(diff(tmp.path / "a.json", tmp.path / "c.json").identical());
  DiffOptions with_meta;
  with_meta.ignore_meta = false;
  EXPECT_TRUE(diff(tmp.path / "a.json", tmp.path / "c.json", with_meta).identical());  // hashes kept
  EXPECT_TRUE(verify(*open(tmp.path / "c.json")).ok());
}

TEST(Convert, RefusesADamagedSourceAndWritesNothing) {
  TempDir tmp;
  fs::path p = tmp.path / "a.msgpack";
  save(sample(), p);
  // Flip one byte inside the largest tensor's data (the file ends with the optimizer state).
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(fs::file_size(p) / 2));
  char c;
  f.read(&c, 1);
  f.seekp(static_cast<std::streamoff>(fs::file_size(p) / 2));
  c = static_cast<char>(c ^ 0x10);
  f.write(&c, 1);
  f.close();
  EXPECT_THROW(convert(p, tmp.path / "b.json"), Error);
  EXPECT_FALSE(fs::exists(tmp.path / "b.json"));
  EXPECT_EQ(files_in(tmp.path), 1u);
}

// A document without hashes (what other tools write) gets them as it converts, and the record's
// path and the root's meta are ckpt's: a tensor there is refused, or leaves no room for them.
TEST(Convert, RecordsHashesComputedAsItStreamsWhereTheSourceHadNone) {
  TempDir tmp;
  Document doc;
  doc.set("producer", "elsewhere");
  doc.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1.5f, -2.0f}));
  doc.group("meta").set("note", "kept").add_tensor("t", Tensor::zeros(DType::i64, {3}));
  doc.add_tensor("b", Tensor::zeros(DType::f32, {2}));
  write_document(doc, tmp.path / "src.msgpack");
  ASSERT_FALSE(verify(*open(tmp.path / "src.msgpack")).has_integrity);
  convert(tmp.path / "src.msgpack", tmp.path / "out.json");
  const VerifyReport r = verify(*open(tmp.path / "out.json"));
  EXPECT_TRUE(r.has_integrity && r.ok() && r.tensors_checked == 3u) << (r.problems.empty() ? "" : r.problems.front());
  // meta (with its own tensor) after the rest, its record last in it; nothing else moved.
  const Document out = read_document(tmp.path / "out.json");
  EXPECT_EQ(out.children().back().name, "meta");
  EXPECT_EQ(out.find_group("meta")->children().back().name, "integrity");
  EXPECT_TRUE(out.find_tensor_path("meta/t")->bit_equal(*doc.find_tensor_path("meta/t")));

  Document hostile;
  hostile.add_tensor("w", Tensor::zeros(DType::f32, {2}));
  hostile.group("meta").add_tensor("integrity", Tensor::zeros(DType::f32, {1}));
  write_document(hostile, tmp.path / "hostile.msgpack");
  EXPECT_THROW(convert(tmp.path / "hostile.msgpack", tmp.path / "hostile.json"), UnsupportedError);
  EXPECT_FALSE(fs::exists(tmp.path / "hostile.json"));

  Document named_meta;
  named_meta.add_tensor("meta", Tensor::zeros(DType::f32, {1}));
  write_document(named_meta, tmp.path / "named.msgpack");
  convert(tmp.path / "named.msgpack", tmp.path / "named.json");
  EXPECT_TRUE(read_document(tmp.path / "named.json").find_tensor("meta"));
}

TEST(Convert, ListsLossesBeforeWritingAndRecordsThemWhenAllowed) {
  FormatInfo narrow;
  narrow.name = "narrow";
  narrow.capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE;  // no attributes, no nesting
  narrow.dtypes = CKPT_DTYPE_BIT(CKPT_DTYPE_F32) | CKPT_DTYPE_BIT(CKPT_DTYPE_I64);
  Document doc = sample().to_document();
  auto losses = plan_losses(doc, narrow);
  bool bf16_cast = false, attr_dropped = false, flattened = false;
  for (const auto& l : losses) {
    bf16_cast |= l.path == "model/state/half" && l.what == "bf16 stored as f32 (exact)";
    attr_dropped |= l.path == "trainer/epoch";
    flattened |= l.what.find("flattened to 'model.state.fc.weight'") != std::string::npos;
  }
  EXPECT_TRUE(bf16_cast);
  EXPECT_TRUE(attr_dropped);
  EXPECT_TRUE(flattened);
}

TEST(Convert, NamesWhatOnlyCkptReadsBackFromAFormatWithAPrivateTree) {
  FormatInfo plain;
  plain.name = "plain";
  plain.capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS;
  plain.dtypes = CKPT_DTYPES_ALL;
  Document doc;
  doc.set("producer", "test").set("epoch", 3);
  doc.group("model").group("state").add_tensor("w", Tensor::zeros(DType::f32, {2}));
  doc.group("optimizer").set("type", "sgd").set("lr", 0.1).group("state");
  doc.group("trainer").group("rng").set("seed", 7);
  EXPECT_TRUE(private_tree_contents(doc, plain).empty()) << "the format holds its tree itself";

  plain.capabilities |= CKPT_CAP_PRIVATE_TREE;
  const auto notes = private_tree_contents(doc, plain);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0].path, "/");
  EXPECT_EQ(notes[0].what, "1 attribute not of type string");  // epoch; producer is seen
  EXPECT_EQ(notes[1].path, "optimizer");
  EXPECT_EQ(notes[1].what, "2 attributes, 1 empty group");
  EXPECT_EQ(notes[2].path, "trainer");
  EXPECT_EQ(notes[2].what, "1 attribute");
  EXPECT_TRUE(plan_losses(doc, plain).empty()) << "a notice, not a loss";
}

TEST(Errors, MissingAndUnknownFilesNameThePath) {
  TempDir tmp;
  try {
    open(tmp.path / "nope.json");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.json"), std::string::npos);
  }
  std::ofstream(tmp.path / "garbage.bin") << "this is not a checkpoint";
  try {
    open(tmp.path / "garbage.bin");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.bin"), std::string::npos);
  }
  try {
    save(sample(), tmp.path / "x.unknown-ext");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("json"), std::string::npos);  // lists known formats
  }
  EXPECT_THROW(save(sample(), tmp.path / "no-such-dir" / "x.json"), IoError);
}
