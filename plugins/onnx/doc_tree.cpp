#include "doc_tree.hpp"

#include <limits>

namespace ckpt_onnx {

using ckpt::sdk::fail;

size_t Tree::add_group(size_t parent, std::string name) {
  groups.push_back({std::move(name), {}, {}});
  const size_t g = groups.size() - 1;
  groups[parent].children.push_back({false, g});
  return g;
}

size_t Tree::add_tensor(size_t parent, TensorNode t) {
  tensors.push_back(std::move(t));
  const size_t k = tensors.size() - 1;
  groups[parent].children.push_back({true, k});
  return k;
}

void Tree::set(size_t group, std::string name, Value v) {
  groups[group].attributes.push_back({std::move(name), std::move(v)});
}

size_t Tree::find_group(size_t group, std::string_view name) const {
  for (const Child& c : groups[group].children)
    if (!c.is_tensor && groups[c.index].name == name) return c.index;
  return std::numeric_limits<size_t>::max();
}

size_t Tree::find_path(std::string_view path) const {
  size_t g = 0;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    g = find_group(g, path.substr(0, slash));
    if (g == std::numeric_limits<size_t>::max()) return g;
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return g;
}

const TensorNode* Tree::find_tensor(size_t group, std::string_view name) const {
  for (const Child& c : groups[group].children)
    if (c.is_tensor && tensors[c.index].name == name) return &tensors[c.index];
  return nullptr;
}

const Value* Tree::attribute(size_t group, std::string_view name) const {
  for (const Attribute& a : groups[group].attributes)
    if (a.name == name) return &a.value;
  return nullptr;
}

void Tree::list(const ckpt::sdk::Visitor& visitor) const { list_group(visitor, 0); }

// Recursion is bounded: the JSON decoder refuses documents nested deeper than kMaxDepth, and
// trees built from a foreign graph are three levels deep.
void Tree::list_group(const ckpt::sdk::Visitor& visitor, size_t g) const {
  const GroupNode& group = groups[g];
  visitor.begin_group(group.name);
  std::vector<ckpt_str> scratch;
  for (const Attribute& a : group.attributes) visitor.attribute(a.name, a.value.view(scratch));
  for (const Child& c : group.children) {
    if (c.is_tensor) {
      const TensorNode& t = tensors[c.index];
      visitor.tensor(t.name, t.dtype, t.shape, t.nbytes, t.id);
    } else {
      list_group(visitor, c.index);
    }
  }
  visitor.end_group();
}

}  // namespace ckpt_onnx
