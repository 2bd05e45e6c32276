// The document's structure as parsed once at open: groups, attributes and tensor
// descriptions. Names and strings are views into the mapped file and tensors are (offset,
// length) pairs, so holding the tree copies no payload.
#pragma once

#include <ckpt/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ckpt_msgpack {

struct AttributeEntry {
  std::string_view name{};
  uint32_t type = 0;  // ckpt_value_type; 0 while an array's element type is still unknown
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string_view s{};
  std::vector<uint8_t> bools{};
  std::vector<int64_t> ints{};
  std::vector<double> floats{};
  std::vector<ckpt_str> strings{};  // point into the mapped file

  // Valid while this entry lives.
  ckpt_value view() const;
};

struct TensorEntry {
  std::string_view name{};
  uint32_t dtype = 0;
  std::vector<int64_t> shape{};
  uint64_t offset = 0;  // of the $data payload in the file
  uint64_t nbytes = 0;
};

struct ChildRef {
  bool is_tensor;
  size_t index;  // into Tree::tensors or Tree::groups
};

struct GroupEntry {
  std::string_view name{};
  std::vector<AttributeEntry> attributes{};
  std::vector<ChildRef> children{};
};

struct Tree {
  std::vector<GroupEntry> groups;  // groups[0] is the root
  std::vector<TensorEntry> tensors;
};

// Parses a whole ckpt-msgpack document. Throws ckpt::sdk::Error naming the byte offset and the
// key path on anything that is not exactly the layout.
Tree parse_tree(std::span<const std::byte> file);

}  // namespace ckpt_msgpack
