#include <ckpt/errors.hpp>
#include <ckpt/train/data.hpp>

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <random>

namespace ckpt::train {

namespace {

// The whole decompressed IDX file. The size is bounded: IDX files of this dataset are at most
// 47 MB decompressed, and the header's counts are checked against what was actually read.
std::vector<uint8_t> read_gz(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw IoError("'" + path.string() + "' does not exist (install Debian's dataset-fashion-mnist package)");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) throw IoError("cannot open '" + path.string() + "': " + std::strerror(errno));
  std::vector<uint8_t> out;
  const size_t cap = size_t(256) << 20;
  uint8_t buf[1 << 16];
  for (;;) {
    int n = gzread(f.get(), buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      const char* msg = gzerror(f.get(), &err);
      throw FormatError("'" + path.string() + "' at decompressed byte " + std::to_string(out.size()) +
                        ": corrupt gzip data (" + (msg ? msg : "?") + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > cap) throw LimitError("'" + path.string() + "': decompresses to more than 256 MiB");
  }
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t off) {
  return (uint32_t(b[off]) << 24) | (uint32_t(b[off + 1]) << 16) | (uint32_t(b[off + 2]) << 8) | b[off + 3];
}

// Fashion-MNIST's training-set statistics, so inputs are roughly zero-mean, unit-variance.
constexpr float kMean = 0.2860f, kStd = 0.3530f;

}  // namespace

Dataset load_fashion_mnist(const std::filesystem::path& dir, const std::string& split, size_t limit) {
  std::string prefix;
  if (split == "train")
    prefix = "train";
  else if (split == "test")
    prefix = "t10k";
  else
    throw UsageError("data split '" + split + "' is neither train nor test");
  auto img_path = dir / (prefix + "-images-idx3-ubyte.gz");
  auto lbl_path = dir / (prefix + "-labels-idx1-ubyte.gz");
  auto img = read_gz(img_path);
  auto lbl = read_gz(lbl_path);
  if (img.size() < 16 || be32(img, 0) != 2051)
    throw FormatError("'" + img_path.string() + "' at byte 0: expected the IDX image magic 2051 (0x00000803)");
  if (lbl.size() < 8 || be32(lbl, 0) != 2049)
    throw FormatError("'" + lbl_path.string() + "' at byte 0: expected the IDX label magic 2049 (0x00000801)");
  uint64_t n = be32(img, 4), rows = be32(img, 8), cols = be32(img, 12);
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
    throw FormatError("'" + img_path.string() + "' at byte 8: implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
  if (16 + n * rows * cols != img.size())
    throw FormatError("'" + img_path.string() + "': header says " + std::to_string(n) + " images of " + std::to_string(rows) + "x" +
                      std::to_string(cols) + " (" + std::to_string(16 + n * rows * cols) + " bytes), file has " + std::to_string(img.size()));
  if (be32(lbl, 4) != n || 8 + n != lbl.size())
    throw FormatError("'" + lbl_path.string() + "': " + std::to_string(be32(lbl, 4)) + " labels in " + std::to_string(lbl.size()) +
                      " bytes do not match " + std::to_string(n) + " images");
  if (limit && limit < n) n = limit;
  Dataset d;
  d.rows = static_cast<int64_t>(rows);
  d.cols = static_cast<int64_t>(cols);
  d.images.resize(n * rows * cols);
  for (size_t i = 0; i < d.images.size(); ++i) d.images[i] = (static_cast<float>(img[16 + i]) / 255.0f - kMean) / kStd;
  d.labels.assign(lbl.begin() + 8, lbl.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  for (size_t i = 0; i < n; ++i)
    if (d.labels[i] > 9)
      throw FormatError("'" + lbl_path.string() + "' at byte " + std::to_string(8 + i) + ": label " + std::to_string(d.labels[i]) + " is not 0..9");
  return d;
}

std::vector<uint32_t> epoch_order(uint64_t seed, int64_t epoch, size_t n) {
  // splitmix64 of (seed, epoch): generators of neighbouring epochs share nothing.
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(epoch + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  std::mt19937_64 rng(z);
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  // Fisher-Yates by hand: std::shuffle's use of the generator is not specified, so its order
  // could change with the standard library.
  for (size_t i = n; i > 1; --i) {
    size_t j = static_cast<size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

void gather_batch(const Dataset& d, std::span<const uint32_t> order, size_t begin, size_t end, Tensor& x,
                  std::vector<uint8_t>& y) {
  const size_t b = end - begin, px = static_cast<size_t>(d.rows * d.cols);
  if (!x.defined() || x.shape()[0] != static_cast<int64_t>(b))
    x = Tensor::empty(DType::f32, {static_cast<int64_t>(b), 1, d.rows, d.cols});
  y.resize(b);
  float* out = x.mutable_data<float>().data();
  for (size_t i = 0; i < b; ++i) {
    uint32_t s = order[begin + i];
    std::memcpy(out + i * px, d.images.data() + size_t(s) * px, px * sizeof(float));
    y[i] = d.labels[s];
  }
}

}  // namespace ckpt::train
