// Reads a pickle file (.pkl, .joblib of NumPy data, also compressed by joblib) through the
// restricted unpickler: arrays are views into the one mapping of the file (or into the
// decompressed pickle, or bytes the pickle spelled out differently).
#pragma once

#include "doc_tree.hpp"
#include <ckpt/sdk_io.hpp>
#include "py_object.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>

#include <optional>

namespace ckpt_pickle {

class PickleReader final : public ckpt::sdk::Reader {
 public:
  // `max_decompressed`: what a compressed joblib file (compressed.hpp) may decompress to, or
  // unset for 1100 times the file plus limits.max_expansion.
  PickleReader(const std::string& path, const ckpt::sdk::ReadLimits& limits, std::optional<uint64_t> max_decompressed = {});

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;

 private:
  TensorEntry& entry(uint64_t id);
  void name_nones(const std::vector<std::string>& nones);

  ckpt::sdk::MappedFile file_;
  std::vector<std::byte> inflated_;  // a compressed file's pickle
  Arena arena_;
  std::vector<std::unique_ptr<Blob>> blobs_;
  std::vector<TensorEntry> tensors_;
  Node root_;
};

}  // namespace ckpt_pickle
