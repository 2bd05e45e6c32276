// ckpt/document.json through the SDK's skeleton codec, in the spelling this plugin has always
// written: its own tree (ckpt_pickle::Node, which the torch layout and the agreement check with
// data.pkl walk) is copied to and from the codec's ckpt::sdk::Tree.
#include "skeleton.hpp"

#include <ckpt/sdk_skeleton.hpp>

namespace ckpt_pytorch {

using ckpt::sdk::Tree;
using ckpt_pickle::Node;

namespace {

// Files already written keep reading, and a document gives the same bytes as before.
constexpr ckpt::sdk::SkeletonKeys kKeys{.format = "ckpt-pytorch",
                                        .version = 1,
                                        .attributes = "attrs",
                                        .children = "children",
                                        .location = "storage",
                                        .name_in_child = false,
                                        .floats_as_bits = true,
                                        .omit_empty = false,
                                        .max_depth = kMaxGroupDepth};

// Recursion is bounded: the host's writer contract bounds the depth of the node it built.
void to_tree(const Node& node, size_t g, Tree& tree, const std::vector<SkeletonTensor>& tensors) {
  for (const auto& [name, value] : node.attributes) tree.add_attribute(g, name, value);
  for (const Node& c : node.children) {
    if (c.is_group) {
      to_tree(c, tree.add_group(g, c.name), tree, tensors);
    } else {
      const SkeletonTensor& t = tensors.at(c.tensor_id);
      tree.add_tensor(g, {.name = c.name, .dtype = t.dtype, .shape = t.shape, .nbytes = 0, .id = c.tensor_id});
    }
  }
}

// Recursion is bounded by kKeys.max_depth, which read_skeleton enforced.
void to_node(Tree& tree, size_t g, Node& node) {
  for (auto& a : tree.groups[g].attributes) node.set(std::move(a.name), std::move(a.value));
  for (const Tree::Child& c : tree.groups[g].children) {
    if (c.is_tensor) node.add_tensor(std::move(tree.tensors[c.index].name), tree.tensors[c.index].id);
    else to_node(tree, c.index, node.add_group(std::move(tree.groups[c.index].name)));
  }
}

}  // namespace

std::string write_skeleton(const Node& root, const std::vector<SkeletonTensor>& tensors) {
  Tree tree;
  to_tree(root, 0, tree, tensors);
  return ckpt::sdk::write_skeleton(tree, kKeys, [&](size_t k) { return std::string_view(tensors.at(tree.tensors[k].id).key); });
}

Node read_skeleton(std::span<const std::byte> bytes,
                   const std::function<uint64_t(const SkeletonTensor&, const std::string&)>& tensor) {
  ckpt::sdk::SkeletonSource source;
  source.where = [](const std::string& path) {
    return std::string(kSkeletonName) + " (" + (path.empty() ? "<root>" : path) + "): ";
  };
  Tree tree = ckpt::sdk::read_skeleton(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), kKeys, source,
      [&](const Tree::Tensor& t, std::string storage, const std::string& path) {
        return tensor(SkeletonTensor{.dtype = t.dtype, .shape = t.shape, .key = std::move(storage)}, path);
      });
  Node root;
  to_node(tree, 0, root);
  return root;
}

}  // namespace ckpt_pytorch
