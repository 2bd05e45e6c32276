// The dtypes added after ckpt 0.1 (u16, u32, u64, f8_e4m3fn, f8_e5m2, c64, c128) against the
// tools that make and read them (dtype_interop.py): files torch, numpy, h5py and onnx wrote
// read bit for bit, and the files ckpt writes read back in those tools with the dtype each
// tool has for them.
#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include "scratch.hpp"

#include <fstream>
#include <sstream>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

const fs::path kHere = CKPT_MATRIX_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string bytes_of(const Tensor& t) { return std::string(reinterpret_cast<const char*>(t.bytes().data()), t.nbytes()); }

int python(const std::string& mode, const fs::path& dir, std::string& out) {
  return ckpt_test::run(std::string(CKPT_PYTHON) + " '" + (kHere / "dtype_interop.py").string() + "' " + mode + " '" +
                            dir.string() + "'",
                        out);
}

}  // namespace

TEST(DtypeInterop, FilesOtherToolsWriteReadExactlyAndCkptsFilesReadInThem) {
  ckpt_test::TempDir tmp("dtype-interop");
  std::string out;
  ASSERT_EQ(python("make", tmp.path, out), 0) << out;
  const std::vector<std::pair<std::string, DType>> arrays = {
      {"u16", DType::u16}, {"u32", DType::u32}, {"u64", DType::u64}, {"c64", DType::c64}, {"c128", DType::c128}};

  // Read: each tool's file, every array with its own dtype and bytes.
  for (const char* file : {"numpy.pkl", "h5py.h5", "onnx.onnx", "torch_complex.pt"}) {
    SCOPED_TRACE(file);
    const Document doc = read_document(tmp.path / file);
    for (const auto& array : arrays) {
      const std::string& name = array.first;  // not a structured binding: clang 14 cannot capture one
      const DType dtype = array.second;
      if (std::string(file) == "torch_complex.pt" && dtype != DType::c64 && dtype != DType::c128) continue;
      const Tensor* t = nullptr;
      doc.for_each_tensor([&](const std::string& path, const Tensor& x) {
        if (path == name || path.ends_with("/" + name)) t = &x;
      });
      ASSERT_TRUE(t) << name;
      EXPECT_EQ(t->dtype(), dtype) << name;
      EXPECT_EQ(bytes_of(*t), slurp(tmp.path / (name + ".bin"))) << name;
    }
  }

  // Write: the numpy arrays plus both float8s (every code, NaNs and infinities included) into
  // HDF5, ONNX and safetensors; torch's complex file through ckpt back to torch.
  Document doc = read_document(tmp.path / "numpy.pkl");
  for (DType d : {DType::f8_e4m3fn, DType::f8_e5m2}) {
    Tensor t = Tensor::empty(d, {16, 16});
    for (size_t i = 0; i < 256; ++i) t.mutable_bytes()[i] = static_cast<std::byte>(i);
    std::ofstream(tmp.path / (std::string(name(d)) + ".bin"), std::ios::binary).write(
        reinterpret_cast<const char*>(t.bytes().data()), 256);
    doc.add_tensor(std::string(name(d)), t);
  }
  write_document(doc, tmp.path / "written.h5");
  write_document(doc, tmp.path / "written.onnx");
  ConvertOptions lossy;
  lossy.allow_lossy = true;  // c128 becomes c64 in safetensors (named); the check skips it
  write_document(doc, tmp.path / "doc.msgpack");
  convert(tmp.path / "doc.msgpack", tmp.path / "written.safetensors", lossy);
  convert(tmp.path / "torch_complex.pt", tmp.path / "roundtrip.pt");
  EXPECT_EQ(python("check", tmp.path, out), 0) << out;
  EXPECT_NE(out.find("OK"), std::string::npos) << out;

  // And back into ckpt from each: every tensor as it was written.
  for (const char* file : {"written.h5", "written.onnx"}) {
    SCOPED_TRACE(file);
    const Document back = read_document(tmp.path / file);
    doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
      const Tensor* b = nullptr;
      back.for_each_tensor([&](const std::string& p, const Tensor& x) {
        if (p == path || p.ends_with("/" + path)) b = &x;
      });
      ASSERT_TRUE(b) << path;
      EXPECT_EQ(b->dtype(), t.dtype()) << path;
      EXPECT_TRUE(b->bit_equal(t)) << path;
    });
  }
}
