// The document exactly as ckpt wrote it: groups, typed attributes and, per tensor, the storage
// key that holds its bytes. Stored beside data.pkl as <archive>/ckpt/document.json, which torch
// ignores; data.pkl is the same content in torch's layout for torch's users. torch.save never
// copies records it does not know, so a file torch rewrites has no skeleton and is read
// through data.pkl like any other torch file.
#pragma once

#include "doc_tree.hpp"

#include <functional>
#include <span>
#include <string>

namespace ckpt_pytorch {

struct SkeletonTensor {
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  std::string key;
};

inline constexpr const char* kSkeletonName = "ckpt/document.json";

// How deep the skeleton's groups may nest (the root is depth 0): the JSON nesting bound this
// reader had (2200) allowed three levels per group. The reader refuses deeper skeletons and the
// writer refuses deeper documents, so ckpt never writes a .pt it then refuses.
inline constexpr size_t kMaxGroupDepth = 733;

std::string write_skeleton(const ckpt_pickle::Node& root, const std::vector<SkeletonTensor>& tensors);

// Parses the skeleton; `tensor` is called for each tensor (with its path) and returns its id.
ckpt_pickle::Node read_skeleton(std::span<const std::byte> json,
                                const std::function<uint64_t(const SkeletonTensor&, const std::string&)>& tensor);

}  // namespace ckpt_pytorch
