// The documents the cases write: random bit patterns, the float and integer values formats get
// wrong, and a representative document shaped to what a format declares it can hold.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/registry.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::conformance {

// splitmix64: tiny, fast enough to fill 64 MiB under ASan, and the same on every platform
// (std::uniform_*_distribution is not), so a seed reproduces the same bytes anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  void fill(std::span<std::byte> out);

 private:
  uint64_t s_;
};

uint64_t mix_seed(uint64_t seed, std::string_view salt);

// Random bits everywhere; floats begin with NaNs (quiet, signalling, with payloads, negative),
// -0.0, infinities and denormals, integers with their extremes; bools hold 0 or 1.
Tensor random_tensor(DType dtype, const Shape& shape, Rng& rng);
// The dtypes a format holds exactly, in enum order.
std::vector<DType> held_dtypes(const FormatInfo& info);

// Attribute values formats tend to break.
std::vector<std::string> awkward_strings();
std::vector<int64_t> int64_extremes();
std::vector<double> special_doubles();  // NaN without payload, +-0, +-inf, denormals, extremes
std::vector<double> nan_payloads();     // NaNs whose payload and sign bits must survive

// Unicode and long names, and names that collide with keys a format might use internally.
std::vector<std::string> unicode_names();
std::vector<std::string> key_like_names();

// A small document using everything `info` declares: attributes (arrays), nested groups, a
// tensor of every held dtype, a scalar and an empty tensor; with meta/integrity when the format
// can hold it, so corruption can be detected after reading.
Document representative(const FormatInfo& info, Rng& rng);
bool can_hold_integrity(const FormatInfo& info);

}  // namespace ckpt::conformance
