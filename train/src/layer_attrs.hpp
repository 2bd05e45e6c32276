// Reading a layer's hyper-parameters from its spec group. Every error names the layer's path and
// the attribute, so a bad checkpoint or config points at the one value to fix.
#pragma once

#include <ckpt/document.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt::train::detail {

struct Pair {
  int64_t h = 0, w = 0;
  bool operator==(const Pair&) const = default;
};

class LayerAttrs {
 public:
  LayerAttrs(const Group& spec, std::string path) : spec_(spec), path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // Required, > 0.
  int64_t positive(std::string_view name) const;
  // An integer or an [h, w] pair, each >= min; `fallback` when absent (required if nullopt).
  Pair pair(std::string_view name, std::optional<Pair> fallback, int64_t min) const;
  bool flag(std::string_view name, bool fallback) const;
  int64_t integer(std::string_view name, int64_t fallback) const;
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string found(std::string_view name) const;
  const Group& spec_;
  std::string path_;
};

// Writes a square pair as one integer (PyTorch's kernel_size=5), otherwise as [h, w].
void write_pair(Group& spec, std::string_view name, Pair p);

}  // namespace ckpt::train::detail
