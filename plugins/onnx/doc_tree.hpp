// A document without tensor bytes: groups, typed attributes, and tensors that name the ONNX
// initializer holding their data. The writer builds one as the host streams a document (and
// stores it as JSON in the model's metadata); the reader rebuilds one from that JSON, or from a
// foreign model's graph, and lists it.
#pragma once

#include <ckpt/plugin_abi.h>
#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_onnx {

using ckpt::sdk::Value;

struct Attribute {
  std::string name;
  Value value;
};

struct TensorNode {
  std::string name;
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  std::string initializer;  // the ONNX initializer holding the bytes
  uint64_t id = 0;          // reader: index into the scanned initializers
};

struct Child {
  bool is_tensor = false;
  size_t index = 0;  // into Tree::tensors or Tree::groups
};

struct GroupNode {
  std::string name;
  std::vector<Attribute> attributes;
  std::vector<Child> children;
};

class Tree {
 public:
  Tree() { groups.push_back({}); }  // the root, named ""
  std::vector<GroupNode> groups;
  std::vector<TensorNode> tensors;

  GroupNode& root() { return groups[0]; }
  const GroupNode& root() const { return groups[0]; }
  size_t add_group(size_t parent, std::string name);
  size_t add_tensor(size_t parent, TensorNode t);
  void set(size_t group, std::string name, Value v);
  // The child group `name` of `group`, or SIZE_MAX.
  size_t find_group(size_t group, std::string_view name) const;
  // The group at a '/'-separated path from the root, or SIZE_MAX.
  size_t find_path(std::string_view path) const;
  const TensorNode* find_tensor(size_t group, std::string_view name) const;
  const Value* attribute(size_t group, std::string_view name) const;

  // Reports the tree to the host, root first.
  void list(const ckpt::sdk::Visitor& visitor) const;

 private:
  void list_group(const ckpt::sdk::Visitor& visitor, size_t g) const;
};

}  // namespace ckpt_onnx
