// What the reader keeps after its one parse: the group tree with attributes and tensor
// descriptions, enough for list() to replay it any number of times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ckpt::jsonfmt {

// Alternatives in ckpt_value_type order (index + 1 == type).
using AttrValue = std::variant<bool, int64_t, double, std::string, std::vector<uint8_t>,
                               std::vector<int64_t>, std::vector<double>, std::vector<std::string>>;

struct AttrRec {
  std::string name;
  AttrValue value;
};

struct TensorRec {
  std::string name;
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  // Large "$data" stays as validated base64 inside the mapped file and is decoded straight into
  // the caller's buffer; everything else is decoded at open into `bytes`.
  std::string_view base64;
  std::vector<std::byte> bytes;
};

struct ChildRef {
  bool is_group;
  size_t index;  // into Tree::groups or Tree::tensors
};

struct GroupRec {
  std::string name;
  std::vector<AttrRec> attrs;
  std::vector<ChildRef> children;
};

// groups[0] is the root. Flat vectors keep destruction and copies non-recursive.
struct Tree {
  std::vector<GroupRec> groups;
  std::vector<TensorRec> tensors;
};

}  // namespace ckpt::jsonfmt
