// The zip writer of the pytorch plugin (zip_writer.hpp), checked by readers other than ours:
// Python's zipfile (CRCs, stored entries, 64-byte aligned data), Debian's unzip -t and
// torch.load (zip_check.py), in the classic layout, with ZIP64 records forced on every field
// (-w zip64=always), and with more entries than the classic end record can count.
#include "pytorch_test_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
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

// Every file convert writes records the hashes of its data, though torch's file had none, and
// ties survive the conversion that computes them (the layout then reaches the pytorch writer
// after the tensors): verify checks every tensor of each output, and torch.load of the file
// converted back finds the tie and the values.
TEST(PytorchZip, ConvertedFilesRecordTheirHashesAndKeepTies) {
  TempDir tmp;
  const fs::path src = tmp.path / "torch.pt";
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import torch; torch.manual_seed(0); w = torch.randn(4, 3); "
                "z = torch.zeros(3); torch.save({'model': {'embed.weight': w, 'head.weight': w, 'a.bias': z, "
                "'b.bias': z.clone()}, 'epoch': 3, 'lr': 0.1}, '" + src.string() + "')\"",
                out),
            0)
      << out;
  for (const char* format : {"json", "msgpack", "safetensors", "hdf5", "onnx", "pytorch"}) {
    SCOPED_TRACE(format);
    const std::string ext = std::string(format) == "pytorch" ? ".pt" : std::string(format) == "hdf5" ? ".h5" : "." + std::string(format);
    const fs::path mid = tmp.path / ("mid" + ext);
    ckpt::convert(src, mid, to(format));
    const ckpt::VerifyReport r = ckpt::verify(*ckpt::open(mid));
    EXPECT_TRUE(r.has_integrity) << "no hashes recorded";
    EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems.front());
    EXPECT_EQ(r.tensors_checked, 4u);
    const fs::path back = tmp.path / ("back_from_" + std::string(format) + ".pt");
    ckpt::convert(mid, back, to("pytorch"));
    out.clear();
    EXPECT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import torch; a = torch.load('" + src.string() + "'); b = torch.load('" +
                      back.string() + "'); m = b['model']; assert m['embed.weight'].data_ptr() == m['head.weight'].data_ptr(), 'tie'; "
                      "assert m['a.bias'].data_ptr() != m['b.bias'].data_ptr(), 'untied'; "
                      "assert all(torch.equal(a['model'][k], m[k]) for k in a['model']); "
                      "assert (b['epoch'], b['lr']) == (3, 0.1), (b['epoch'], b['lr']); print('OK')\"",
                  out),
              0)
        << out;
  }
}
