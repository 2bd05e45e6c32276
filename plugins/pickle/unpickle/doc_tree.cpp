#include "doc_tree.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ckpt_pickle {

using ckpt::sdk::fail;

AttrValue AttrValue::boolean(bool v) {
  AttrValue a;
  a.type = CKPT_VALUE_BOOL;
  a.b = v;
  return a;
}
AttrValue AttrValue::integer(int64_t v) {
  AttrValue a;
  a.type = CKPT_VALUE_INT64;
  a.i = v;
  return a;
}
AttrValue AttrValue::floating(double v) {
  AttrValue a;
  a.type = CKPT_VALUE_FLOAT64;
  a.f = v;
  return a;
}
AttrValue AttrValue::string(std::string v) {
  AttrValue a;
  a.type = CKPT_VALUE_STRING;
  a.s = std::move(v);
  return a;
}

ckpt_value AttrValue::view(std::vector<ckpt_str>& scratch) const {
  using namespace ckpt::sdk;
  switch (type) {
    case CKPT_VALUE_BOOL: return make_bool(b);
    case CKPT_VALUE_INT64: return make_int(i);
    case CKPT_VALUE_FLOAT64: return make_float(f);
    case CKPT_VALUE_STRING: return make_string(s);
    case CKPT_VALUE_BOOL_ARRAY: return make_bools(bools);
    case CKPT_VALUE_INT64_ARRAY: return make_ints(ints);
    case CKPT_VALUE_FLOAT64_ARRAY: return make_floats(floats);
    case CKPT_VALUE_STRING_ARRAY:
      scratch.clear();
      for (const auto& x : strings) scratch.push_back({x.data(), x.size()});
      return make_strings(scratch);
    default: fail(CKPT_ERR_INTERNAL, "an attribute without a type");
  }
}

bool AttrValue::operator==(const AttrValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case CKPT_VALUE_BOOL: return b == o.b;
    case CKPT_VALUE_INT64: return i == o.i;
    case CKPT_VALUE_FLOAT64: return std::bit_cast<uint64_t>(f) == std::bit_cast<uint64_t>(o.f);
    case CKPT_VALUE_STRING: return s == o.s;
    case CKPT_VALUE_BOOL_ARRAY: return bools == o.bools;
    case CKPT_VALUE_INT64_ARRAY: return ints == o.ints;
    case CKPT_VALUE_FLOAT64_ARRAY:
      return floats.size() == o.floats.size() &&
             std::equal(floats.begin(), floats.end(), o.floats.begin(),
                        [](double x, double y) { return std::bit_cast<uint64_t>(x) == std::bit_cast<uint64_t>(y); });
    case CKPT_VALUE_STRING_ARRAY: return strings == o.strings;
    default: return false;
  }
}

const Node* Node::child(std::string_view n) const {
  auto it = child_at_.find(std::string(n));
  return it == child_at_.end() ? nullptr : &children[it->second];
}
Node* Node::child(std::string_view n) {
  auto it = child_at_.find(std::string(n));
  return it == child_at_.end() ? nullptr : &children[it->second];
}
const AttrValue* Node::attribute(std::string_view n) const {
  auto it = attribute_at_.find(std::string(n));
  return it == attribute_at_.end() ? nullptr : &attributes[it->second].second;
}
Node& Node::add_child(Node n) {
  if (!child_at_.try_emplace(n.name, children.size()).second)
    fail(CKPT_ERR_INTERNAL, "child '" + n.name + "' added twice to group '" + name + "'");
  return children.emplace_back(std::move(n));
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
void Node::set(std::string n, AttrValue v) {
  auto [it, fresh] = attribute_at_.try_emplace(n, attributes.size());
  if (fresh) attributes.emplace_back(std::move(n), std::move(v));
  else attributes[it->second].second = std::move(v);
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
  if (big_endian && item > 1)
    for (size_t k = 0; k < n; k += item) std::reverse(dst.data() + k, dst.data() + k + item);
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

std::string escape_name(std::string_view key) {
  if (key.empty()) return "%";
  std::string out;
  for (char c : key) {
    if (c == '/') out += "%2F";
    else if (c == '\0') out += "%00";
    else out += c;
  }
  return out;
}

}  // namespace ckpt_pickle
