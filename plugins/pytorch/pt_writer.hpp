// Writes a torch.save zip: each tensor's bytes go to archive/data/<key> as they come (64-byte
// aligned, stored); at finish, data.pkl (the document in torch's layout), version, byteorder
// and ckpt's skeleton of the exact document.
#pragma once

#include "doc_tree.hpp"
#include "pickle_writer.hpp"
#include "skeleton.hpp"
#include "zip_archive.hpp"

#include <ckpt/sdk.hpp>

namespace ckpt_pytorch {

class PtWriter final : public ckpt::sdk::Writer {
 public:
  // floats_as_tensors: floats in data.pkl become 0-d float64 tensors, the only floats torch
  // 1.13's weights_only loader accepts; else Python floats, as torch.save writes them.
  PtWriter(const std::string& path, bool floats_as_tensors);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  ckpt_pickle::Node& top(const char* event);
  std::string add_storage(std::span<const std::byte> data);

  ZipWriter zip_;
  bool floats_as_tensors_;
  ckpt_pickle::Node root_;
  std::vector<ckpt_pickle::Node*> stack_;
  std::vector<SkeletonTensor> tensors_;
  uint64_t next_key_ = 0;
  bool root_done_ = false;
  bool finished_ = false;
};

}  // namespace ckpt_pytorch
