// Reads a pickle file (.pkl, .joblib of NumPy data) through the restricted unpickler: arrays
// are views into the one mapping of the file (or bytes the pickle spelled out differently).
#pragma once

#include "doc_tree.hpp"
#include <ckpt/sdk_io.hpp>
#include "py_object.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>

namespace ckpt_pickle {

class PickleReader final : public ckpt::sdk::Reader {
 public:
  PickleReader(const std::string& path, const ckpt::sdk::ReadLimits& limits);

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;

 private:
  TensorEntry& entry(uint64_t id);

  ckpt::sdk::MappedFile file_;
  Arena arena_;
  std::vector<std::unique_ptr<Blob>> blobs_;
  std::vector<TensorEntry> tensors_;
  Node root_;
};

}  // namespace ckpt_pickle
