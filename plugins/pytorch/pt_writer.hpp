// Writes a torch.save zip: each tensor's bytes go to archive/data/<key> as they come (64-byte
// aligned, stored); at finish, data.pkl (the document in torch's layout), version, byteorder
// and ckpt's skeleton of the exact document.
#pragma once

#include "doc_tree.hpp"
#include "pickle_writer.hpp"
#include "skeleton.hpp"
#include "user_layout.hpp"
#include <ckpt_zip/zip_writer.hpp>

#include <array>
#include <optional>
#include <unordered_map>

#include <ckpt/sdk.hpp>

namespace ckpt_pytorch {

// The zip container code is plugins/common/zip (shared with plugins/numpy).
using ckpt_zip::ZipWriter;

class PtWriter final : public ckpt::sdk::Writer {
 public:
  // floats_as_tensors: floats in data.pkl become 0-d float64 tensors, the only floats torch
  // 1.13's weights_only loader accepts; else Python floats, as torch.save writes them.
  // later_torch: tensors of dtypes torch 1.13 has no storage for (u16, u32, u64, float8) are
  // written as torch 2.3's storages (write option torch=2.3, the default); else (torch=1.13)
  // they are refused, naming the tensor.
  PtWriter(const std::string& path, bool floats_as_tensors, bool always_zip64, bool later_torch = true);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  ckpt_pickle::Node& top(const char* event);
  // Writes data/<key> for `data`; its key, and where its bytes lie in `offset`.
  std::string add_storage(std::span<const std::byte> data, uint64_t* offset = nullptr);
  // The object of the user's layout in meta/@torch_layout, once it reads back as root_; the
  // layout attribute is rewritten as what is written.
  PyOut followed_layout();
  std::string current_path(std::string_view name) const;

  ZipWriter zip_;
  bool floats_as_tensors_;
  bool later_torch_;
  // Fails naming the tensor at `path` when torch 1.13 has no storage of `dtype` (and the file is not for a later torch).
  void check_torch_storage(uint32_t dtype, const std::string& path) const;
  ckpt_pickle::Node root_;
  std::vector<ckpt_pickle::Node*> stack_;
  std::vector<SkeletonTensor> tensors_;
  uint64_t next_key_ = 0;
  // The user's layout, when meta/@torch_layout came before the tensors it ties: a tied tensor
  // then shares its leader's storage (after its bytes are found equal).
  std::optional<UserLayout> layout_;
  std::unordered_map<std::string, size_t> tensor_at_;  // document path -> tensors_ index
  std::unordered_map<std::string, std::array<unsigned char, 32>> digests_;  // of tie members
  std::vector<std::pair<std::string, std::string>> tied_;  // (tensor, leader) sharing a storage
  // When the layout comes after the tensors (convert puts meta last to write the hashes it
  // computes as they stream), ties are not known as tensors arrive: a tensor whose bytes equal
  // an earlier one's (same dtype and shape; xxh3, then the bytes read back) is not written but
  // noted as a copy of it; at finish, a copy the layout ties to a tensor of the same bytes shares
  // its storage and any other copy is written then.
  struct Stored {
    size_t tensor;        // tensors_ index of the first tensor with these bytes
    uint64_t offset = 0;  // of its data in the archive
  };
  std::unordered_map<uint64_t, std::vector<Stored>> by_content_;
  std::vector<std::pair<size_t, Stored>> copies_;  // (tensors_ index, the stored tensor it equals)
  std::vector<size_t> first_of_;                   // tensors_ index -> the first with its bytes
  std::vector<std::string> path_of_;               // tensors_ index -> document path
  std::unordered_map<std::string, uint64_t> offset_of_;  // storage key -> where its data lies
  void resolve_copies();
  bool root_done_ = false;
  bool finished_ = false;
};

}  // namespace ckpt_pytorch
