// The zip writer of the pytorch plugin (zip_writer.hpp), checked by readers other than ours:
// Python's zipfile (CRCs, stored entries, 64-byte aligned data), Debian's unzip -t and
// torch.load (zip_check.py), in the classic layout, with ZIP64 records forced on every field
// (-w zip64=always), and with more entries than the classic end record can count.
#include "pytorch_test_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

using namespace pytorch_test;

namespace {

ckpt::Document numbered_tensors(int count) {
  ckpt::Document doc;
  for (int i = 0; i < count; ++i) {
    const int n = i % 7 + 1;
    std::vector<float> v(static_cast<size_t>(n));
    for (int k = 0; k < n; ++k) v[static_cast<size_t>(k)] = static_cast<float>(k * (i + 1));
    doc.add_tensor("t" + std::to_string(i), ckpt::Tensor::from<float>(ckpt::DType::f32, {n}, v));
  }
  return doc;
}

void check(const fs::path& file, int count, bool zip64) {
  std::string out;
  const int rc = run(std::string(CKPT_PYTHON) + " '" + (kHere / "zip_check.py").string() + "' '" + file.string() + "' " +
                         std::to_string(count) + (zip64 ? " yes" : " no"),
                     out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("OK"), std::string::npos) << out;
}

}  // namespace

TEST(PytorchZip, OtherReadersCheckTheArchiveInBothLayouts) {
  TempDir tmp;
  const ckpt::Document doc = numbered_tensors(5);
  ckpt::SaveOptions classic;
  classic.fsync = false;
  ckpt::write_document(doc, tmp.path / "classic.pt", classic);
  check(tmp.path / "classic.pt", 5, false);

  ckpt::SaveOptions forced = classic;
  forced.format_options = {{"zip64", "always"}};
  ckpt::write_document(doc, tmp.path / "zip64.pt", forced);
  check(tmp.path / "zip64.pt", 5, true);
  // Our own reader takes both, and both hold the same document.
  EXPECT_TRUE(ckpt::read_document(tmp.path / "zip64.pt").find_tensor("t4")->bit_equal(*doc.find_tensor("t4")));
  EXPECT_TRUE(ckpt::read_document(tmp.path / "classic.pt").find_tensor("t4")->bit_equal(*doc.find_tensor("t4")));

  ckpt::SaveOptions bad = classic;
  bad.format_options = {{"zip64", "sometimes"}};
  EXPECT_THROW(ckpt::write_document(doc, tmp.path / "bad.pt", bad), ckpt::UsageError);
}

// 70000 tensors are 70000 storages, more entries than the classic end record's 16-bit count.
TEST(PytorchZip, MoreEntriesThanTheClassicCountTakeZip64EndRecords) {
  TempDir tmp;
  const int count = 70000;
  const ckpt::Document doc = numbered_tensors(count);
  ckpt::SaveOptions o;
  o.fsync = false;
  ckpt::write_document(doc, tmp.path / "many.pt", o);
  check(tmp.path / "many.pt", count, true);
  const ckpt::Document back = ckpt::read_document(tmp.path / "many.pt");
  EXPECT_TRUE(back.find_tensor("t69999")->bit_equal(*doc.find_tensor("t69999")));
}
