// Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files, gzip) and a deterministic
// shuffler whose whole state is (seed, epoch, position) so a resumed run sees the same batches.
#pragma once

#include <ckpt/tensor.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace ckpt::train {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  int64_t rows = 0, cols = 0;
  std::vector<float> images;   // N * rows * cols, normalised
  std::vector<uint8_t> labels;  // N
  size_t size() const { return labels.size(); }
};

// split: "train" or "test". `limit` > 0 keeps the first `limit` samples. Throws IoError for a
// missing file and FormatError (file, offset, expected vs found) for a corrupt one.
Dataset load_fashion_mnist(const std::filesystem::path& dir, const std::string& split, size_t limit = 0);

// The order of samples in `epoch`: a Fisher-Yates shuffle from a generator seeded by
// (seed, epoch) alone.
std::vector<uint32_t> epoch_order(uint64_t seed, int64_t epoch, size_t n);

// Copies the samples `order[begin..end)` into x [B, 1, rows, cols] and y.
void gather_batch(const Dataset& d, std::span<const uint32_t> order, size_t begin, size_t end, Tensor& x,
                  std::vector<uint8_t>& y);

}  // namespace ckpt::train
