// The checked-in files of golden/ (written by golden/make_golden.py with Debian's
// python3-torch): small.pt is torch.save's own file and reads with its exact bytes, as does a
// copy a zip tool deflated; every broken copy is the typed error golden/expected.tsv names,
// with the file, the place and what was wrong, from the library and from the ckpt program,
// and never a crash.
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include "pytorch_test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

using namespace ckpt;
using namespace pytorch_test;

namespace {

const fs::path kGolden = kHere / "golden";

// small.pt's tensors, in torch.save's order.
const char* const kSmall[] = {"fc.weight", "fc.bias", "row", "col", "half", "bf16", "ids", "mask", "scalar"};

void expect_small(const Document& doc, const std::string& file, const std::string& flipped = "") {
  // The tensors, after the meta group that keeps torch's layout of the file.
  const size_t first = !doc.children().empty() && doc.children()[0].name == "meta" ? 1 : 0;
  ASSERT_EQ(doc.children().size(), first + std::size(kSmall)) << file;
  for (size_t i = 0; i < std::size(kSmall); ++i) {
    SCOPED_TRACE(file + ": " + kSmall[i]);
    ASSERT_EQ(doc.children()[first + i].name, kSmall[i]);
    const Tensor* t = doc.find_tensor(kSmall[i]);
    ASSERT_TRUE(t);
    std::string want = slurp(kGolden / "expect" / (std::string("small.") + kSmall[i]));
    if (flipped == kSmall[i]) want[3] = static_cast<char>(want[3] ^ 0x80);
    EXPECT_EQ(bytes_of(*t), want);
  }
  EXPECT_EQ(doc.find_tensor("fc.weight")->shape(), (Shape{2, 3}));
  EXPECT_EQ(doc.find_tensor("col")->shape(), (Shape{3, 2}));
  EXPECT_EQ(doc.find_tensor("half")->dtype(), DType::f16);
  EXPECT_EQ(doc.find_tensor("bf16")->dtype(), DType::bf16);
  EXPECT_EQ(doc.find_tensor("ids")->dtype(), DType::i64);
  EXPECT_EQ(doc.find_tensor("mask")->dtype(), DType::boolean);
  EXPECT_EQ(doc.find_tensor("scalar")->shape(), Shape{});
}

struct Broken {
  std::string file, error;
  std::vector<std::string> says;
};

std::vector<Broken> expected_errors() {
  std::vector<Broken> out;
  std::istringstream in(slurp(kGolden / "expected.tsv"));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Broken b;
    std::getline(fields, b.file, '\t');
    std::getline(fields, b.error, '\t');
    for (std::string s; std::getline(fields, s, '\t');) b.says.push_back(s);
    out.push_back(std::move(b));
  }
  return out;
}

// The name of the ckpt exception `e` is, most derived first.
std::string error_name(const std::exception& e) {
  if (dynamic_cast<const LimitError*>(&e)) return "LimitError";
  if (dynamic_cast<const FormatError*>(&e)) return "FormatError";
  if (dynamic_cast<const IntegrityError*>(&e)) return "IntegrityError";
  if (dynamic_cast<const UnsupportedError*>(&e)) return "UnsupportedError";
  if (dynamic_cast<const Error*>(&e)) return "Error";
  return "not a ckpt error";
}

}  // namespace

TEST(PytorchGolden, TorchsOwnFileReadsWithItsExactBytes) {
  const Document doc = read_document(kGolden / "small.pt");
  expect_small(doc, "small.pt");
  EXPECT_EQ(doc.find_tensor("fc.weight")->storage_kind(), StorageKind::mapped);
  // As a checkpoint, a state dict is the model's state.
  const Checkpoint c = load(kGolden / "small.pt");
  EXPECT_EQ(c.model_state.children().size(), std::size(kSmall));
  EXPECT_EQ(bytes_of(*c.model_state.find_tensor("row")), slurp(kGolden / "expect/small.row"));
}

TEST(PytorchGolden, DeflatedEntriesAreInflatedAndRead) {
  // Every entry deflated, data.pkl and version included, as `zip -r` would repack the file.
  expect_small(read_document(kGolden / "deflated.pt"), "deflated.pt");
}

TEST(PytorchGolden, StoredStoragesAreNotCrcChecked) {
  // The documented rule (torch's reader does the same; ckpt's own tensor hashes cover the files
  // it writes): a stored storage is used in place, so a changed byte reads as it is.
  expect_small(read_document(kGolden / "flip_storage.pt"), "flip_storage.pt", "fc.bias");
}

TEST(PytorchGolden, EveryBrokenFileIsTheTypedErrorItsListNames) {
  const std::vector<Broken> cases = expected_errors();
  ASSERT_GE(cases.size(), 9u) << "golden/expected.tsv";
  TempDir tmp;
  for (const Broken& b : cases) {
    SCOPED_TRACE(b.file);
    const fs::path p = kGolden / b.file;
    ASSERT_TRUE(fs::exists(p));
    std::string message;
    try {
      // Reading the whole document: a deflated storage is inflated (and checked) here.
      const Document doc = read_document(p);
      ADD_FAILURE() << "read without an error";
    } catch (const std::exception& e) {
      message = e.what();
      EXPECT_EQ(error_name(e), b.error) << message;
    }
    for (const std::string& s : b.says) EXPECT_NE(message.find(s), std::string::npos) << "says '" << s << "': " << message;
    // The ckpt program: exit code 2 (bad input), the same message, no crash.
    std::string out;
    EXPECT_EQ(run(ckpt_cli("convert " + p.string() + " " + (tmp.path / "out.msgpack").string()), out), 2) << out;
    for (const std::string& s : b.says) EXPECT_NE(out.find(s), std::string::npos) << "says '" << s << "': " << out;
    EXPECT_FALSE(fs::exists(tmp.path / "out.msgpack"));
  }
}
