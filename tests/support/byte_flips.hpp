// Damage a file one byte at a time, as the every-byte corruption tests do: each offset of a range
// (or every stride-th), XORed with each of a few masks, written out whole before the test
// looks at it. Each test keeps its own verdict on what it then reads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace ckpt_test {

// Writes `bytes` to `path` with the byte at `at` XORed with `mask`.
inline void write_flipped(const std::filesystem::path& path, const std::string& bytes, size_t at, uint8_t mask) {
  std::string copy = bytes;
  copy[at] = static_cast<char>(static_cast<uint8_t>(copy[at]) ^ mask);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(copy.data(), static_cast<std::streamsize>(copy.size()));
}

struct ByteFlips {
  size_t begin = 0;
  size_t end = SIZE_MAX;  // clipped to the file's size
  size_t stride = 1;
  std::vector<uint8_t> masks{0xff};
  std::function<bool(size_t at)> skip{};  // offsets left alone, such as opaque tensor bytes
};

// For every offset and mask that `flips` names, writes the damaged copy of `bytes` to `damaged`
// and calls check(at, mask).
inline void flip_every_byte(const std::string& bytes, const std::filesystem::path& damaged, const ByteFlips& flips,
                            const std::function<void(size_t at, uint8_t mask)>& check) {
  const size_t end = std::min(flips.end, bytes.size());
  for (size_t at = flips.begin; at < end; at += flips.stride) {
    if (flips.skip && flips.skip(at)) continue;
    for (uint8_t mask : flips.masks) {
      write_flipped(damaged, bytes, at, mask);
      check(at, mask);
    }
  }
}

}  // namespace ckpt_test
