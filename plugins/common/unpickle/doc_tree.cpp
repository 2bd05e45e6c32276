#include "doc_tree.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_set>

namespace ckpt_pickle {

using ckpt::sdk::fail;

std::string_view Node::ChildName::operator()(size_t i) const { return node->children[i].name; }
std::string_view Node::AttributeName::operator()(size_t i) const { return node->attributes[i].first; }

const Node* Node::child(std::string_view n) const {
  auto i = child_at_.find(n, ChildName{this});
  return i ? &children[*i] : nullptr;
}
Node* Node::child(std::string_view n) {
  auto i = child_at_.find(n, ChildName{this});
  return i ? &children[*i] : nullptr;
}
const Value* Node::attribute(std::string_view n) const {
  auto i = attribute_at_.find(n, AttributeName{this});
  return i ? &attributes[*i].second : nullptr;
}
Node& Node::add_child(Node n) {
  children.push_back(std::move(n));
  if (!child_at_.insert(children.size() - 1, ChildName{this})) {
    const std::string name = std::move(children.back().name);
    children.pop_back();
    fail(CKPT_ERR_INTERNAL, "child '" + name + "' added twice to group '" + this->name + "'");
  }
  return children.back();
}
Node& Node::add_group(std::string n) {
  Node g;
  g.name = std::move(n);
  return add_child(std::move(g));
}
void Node::add_tensor(std::string n, uint64_t id) {
  Node t;
  t.name = std::move(n);
  t.is_group = false;
  t.tensor_id = id;
  add_child(std::move(t));
}
void Node::set(std::string n, Value v) {
  if (auto i = attribute_at_.find(n, AttributeName{this})) {
    attributes[*i].second = std::move(v);
    return;
  }
  attributes.emplace_back(std::move(n), std::move(v));
  attribute_at_.insert(attributes.size() - 1, AttributeName{this});
}

namespace {
template <class Taken>
std::string unused_name(const std::string& n, std::unordered_map<std::string, uint64_t>& next, Taken taken) {
  if (!taken(n)) return n;
  uint64_t& k = next.try_emplace(n, 2).first->second;
  for (;; ++k) {
    std::string c = n + "_" + std::to_string(k);
    if (!taken(c)) return c;
  }
}
}  // namespace

std::string Node::unused_child_name(const std::string& n) {
  return unused_name(n, child_suffix_, [&](const std::string& c) { return child(c) != nullptr; });
}
std::string Node::unused_attribute_name(const std::string& n) {
  return unused_name(n, attribute_suffix_, [&](const std::string& c) { return attribute(c) != nullptr; });
}

uint64_t TensorEntry::nbytes() const {
  return ckpt::sdk::checked_nbytes(shape, ckpt::sdk::dtype_size(dtype), path);
}

bool TensorEntry::dense() const {
  if (big_endian) return false;
  int64_t expect = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

namespace {

// Copies `rows` of the view's innermost dimension, recursing over the outer ones.
void gather(const std::byte* base, size_t item, std::span<const int64_t> shape, std::span<const int64_t> strides,
            int64_t offset, std::byte*& out) {
  if (shape.empty()) {
    std::memcpy(out, base + static_cast<size_t>(offset) * item, item);
    out += item;
    return;
  }
  if (shape.size() == 1 && strides[0] == 1) {
    const size_t n = static_cast<size_t>(shape[0]) * item;
    std::memcpy(out, base + static_cast<size_t>(offset) * item, n);
    out += n;
    return;
  }
  for (int64_t i = 0; i < shape[0]; ++i)
    gather(base, item, shape.subspan(1), strides.subspan(1), offset + i * strides[0], out);
}

}  // namespace

void FileBlob::read(uint64_t offset, std::span<std::byte> dst) {
  // Small reads are cheaper from the mapping than through a system call.
  if (dst.size() < (64u << 10)) Blob::read(offset, dst);
  else file_.read_at(at_ + offset, dst);
}

void TensorEntry::copy_to(std::span<std::byte> dst) const {
  const uint64_t n = nbytes();
  if (dst.size() != n)
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + path + "' has " + std::to_string(n) + " bytes, the buffer " +
                                        std::to_string(dst.size()));
  if (n == 0) return;
  const size_t item = ckpt::sdk::dtype_size(dtype);
  if (dense()) {
    blob->read(static_cast<uint64_t>(offset) * item, dst);
  } else {
    std::byte* out = dst.data();
    gather(blob->bytes().data(), item, shape, strides, offset, out);
  }
  // Each number in its own order: a complex element is two of them.
  const size_t number = ckpt::sdk::dtype_number_size(dtype);
  if (big_endian && number > 1)
    for (size_t k = 0; k < n; k += number) std::reverse(dst.data() + k, dst.data() + k + number);
}

const void* TensorEntry::map() {
  const size_t item = ckpt::sdk::dtype_size(dtype);
  if (dense() && blob->in_file()) return blob->bytes().data() + static_cast<size_t>(offset) * item;
  if (materialized.empty() && nbytes() > 0) {
    materialized.resize(nbytes());
    copy_to(materialized);
  }
  return materialized.data();
}

void check_expansion(const std::vector<TensorEntry>& tensors, const ckpt::sdk::ReadLimits& limits, const std::string& source) {
  std::unordered_set<const Blob*> seen;
  uint64_t listed = 0, stored = 0;
  for (const TensorEntry& t : tensors) {
    listed += t.nbytes();
    if (t.blob && seen.insert(t.blob).second) stored += t.blob->size();
  }
  limits.check_expansion(listed, stored, source, "its " + std::to_string(tensors.size()) + " tensors");
}

void list_tree(const Node& node, const ckpt::sdk::Visitor& visitor, const std::vector<TensorEntry>& tensors) {
  visitor.begin_group(node.name);
  std::vector<ckpt_str> scratch;
  for (const auto& [k, v] : node.attributes) visitor.attribute(k, v.view(scratch));
  for (const Node& c : node.children) {
    if (c.is_group) {
      list_tree(c, visitor, tensors);
    } else {
      const TensorEntry& t = tensors.at(c.tensor_id);
      visitor.tensor(c.name, t.dtype, t.shape, t.nbytes(), c.tensor_id);
    }
  }
  visitor.end_group();
}

bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  auto bits = [](double d) { return std::bit_cast<uint64_t>(d); };
  switch (a.type) {
    case CKPT_VALUE_BOOL: return a.b == b.b;
    case CKPT_VALUE_INT64: return a.i == b.i;
    case CKPT_VALUE_FLOAT64: return bits(a.f) == bits(b.f);
    case CKPT_VALUE_STRING: return a.s == b.s;
    case CKPT_VALUE_FLOAT64_ARRAY:
      if (a.floats.size() != b.floats.size()) return false;
      for (size_t i = 0; i < a.floats.size(); ++i)
        if (bits(a.floats[i]) != bits(b.floats[i])) return false;
      return true;
    default: return a.bools == b.bools && a.ints == b.ints && a.strings == b.strings;
  }
}

}  // namespace ckpt_pickle
