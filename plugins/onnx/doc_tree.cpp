#include "doc_tree.hpp"

#include <limits>

namespace ckpt_onnx {

using ckpt::sdk::fail;

OwnedValue OwnedValue::copy_of(const ckpt_value& v, const std::string& where) {
  OwnedValue o;
  o.type = v.type;
  const uint64_t n = v.count;
  switch (v.type) {
    case CKPT_VALUE_BOOL: o.b = v.u.b != 0; break;
    case CKPT_VALUE_INT64: o.i = v.u.i; break;
    case CKPT_VALUE_FLOAT64: o.f = v.u.f; break;
    case CKPT_VALUE_STRING: o.s.assign(v.u.s.data, v.u.s.size); break;
    case CKPT_VALUE_BOOL_ARRAY:
      o.bools.reserve(n);
      for (uint64_t k = 0; k < n; ++k) o.bools.push_back(v.u.bools[k] ? 1 : 0);
      break;
    case CKPT_VALUE_INT64_ARRAY: o.ints.assign(v.u.ints, v.u.ints + n); break;
    case CKPT_VALUE_FLOAT64_ARRAY: o.floats.assign(v.u.floats, v.u.floats + n); break;
    case CKPT_VALUE_STRING_ARRAY:
      o.strings.reserve(n);
      for (uint64_t k = 0; k < n; ++k) o.strings.emplace_back(v.u.strings[k].data, v.u.strings[k].size);
      break;
    default:
      fail(CKPT_ERR_INVALID_ARGUMENT, where + " has unknown value type " + std::to_string(v.type));
  }
  return o;
}

ckpt_value OwnedValue::view(std::vector<ckpt_str>& scratch) const {
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
      for (const auto& e : strings) scratch.push_back({e.data(), e.size()});
      return make_strings(scratch);
    default: fail(CKPT_ERR_INTERNAL, "attribute with no type");
  }
}

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

void Tree::set(size_t group, std::string name, OwnedValue v) {
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

const OwnedValue* Tree::attribute(size_t group, std::string_view name) const {
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

OwnedValue string_value(std::string s) {
  OwnedValue v;
  v.type = CKPT_VALUE_STRING;
  v.s = std::move(s);
  return v;
}
OwnedValue int_value(int64_t i) {
  OwnedValue v;
  v.type = CKPT_VALUE_INT64;
  v.i = i;
  return v;
}
OwnedValue float_value(double f) {
  OwnedValue v;
  v.type = CKPT_VALUE_FLOAT64;
  v.f = f;
  return v;
}
OwnedValue bool_value(bool b) {
  OwnedValue v;
  v.type = CKPT_VALUE_BOOL;
  v.b = b;
  return v;
}
OwnedValue ints_value(std::vector<int64_t> i) {
  OwnedValue v;
  v.type = CKPT_VALUE_INT64_ARRAY;
  v.ints = std::move(i);
  return v;
}
OwnedValue strings_value(std::vector<std::string> s) {
  OwnedValue v;
  v.type = CKPT_VALUE_STRING_ARRAY;
  v.strings = std::move(s);
  return v;
}

}  // namespace ckpt_onnx
