// The document a reader reports, built once at open from the header (and from the document
// entry of __metadata__ when the file has one). Tensors are indices into Header::tensors.
#pragma once

#include <ckpt/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_safetensors {

struct AttributeEntry {
  std::string name{};
  uint32_t type = 0;  // ckpt_value_type
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s{};
  std::vector<uint8_t> bools{};
  std::vector<int64_t> ints{};
  std::vector<double> floats{};
  std::vector<std::string> strings{};
  std::vector<ckpt_str> string_views{};  // into `strings`, made by seal()

  // Call once the value is complete and before view(); the entry must not move afterwards.
  void seal();
  // Valid while this entry lives.
  ckpt_value view() const;
};

struct ChildRef {
  bool is_tensor;
  size_t index;  // into Header::tensors (then Tree::alias_targets) or Tree::groups
};

struct GroupEntry {
  std::string name{};
  std::vector<AttributeEntry> attributes{};
  std::vector<ChildRef> children{};
};

struct Tree {
  std::vector<GroupEntry> groups;         // groups[0] is the root
  // The last path segment of each tensor: the end of its header key, so NUL-terminated. Then
  // one per alias (kAliasesKey), whose index is the header's tensor count plus its own.
  std::vector<std::string_view> tensor_names;
  // An alias's name (tensor_names views it: a deque keeps it in place) and the header index of
  // the tensor that holds its bytes.
  std::deque<std::string> alias_names;
  std::vector<size_t> alias_targets;
};

}  // namespace ckpt_safetensors
