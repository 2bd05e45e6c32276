#include "py_to_doc.hpp"
#include "py_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ckpt_pickle {

using ckpt::sdk::fail;

std::string unique_child_name(Node& group, const std::string& name) { return group.unused_child_name(name); }

namespace {

// A NumPy scalar as a number.
std::optional<Value> scalar_value(const Array& a) {
  const Text* t = as_text(a.base);
  if (!t) return std::nullopt;
  std::string_view raw = t->str();
  std::string b(raw);
  if (a.big_endian) std::reverse(b.begin(), b.end());
  auto get = [&](auto v) {
    std::memcpy(&v, b.data(), sizeof v);
    return v;
  };
  switch (a.dtype) {
    case CKPT_DTYPE_F64: return Value::floating(get(double{}));
    case CKPT_DTYPE_F32: return Value::floating(get(float{}));
    case CKPT_DTYPE_I8: return Value::integer(get(int8_t{}));
    case CKPT_DTYPE_U8: return Value::integer(get(uint8_t{}));
    case CKPT_DTYPE_I16: return Value::integer(get(int16_t{}));
    case CKPT_DTYPE_I32: return Value::integer(get(int32_t{}));
    case CKPT_DTYPE_I64: return Value::integer(get(int64_t{}));
    case CKPT_DTYPE_BOOL: return Value::boolean(get(uint8_t{}) != 0);
    case CKPT_DTYPE_U16: return Value::integer(get(uint16_t{}));
    case CKPT_DTYPE_U32: return Value::integer(get(uint32_t{}));
    case CKPT_DTYPE_U64: {  // beyond int64: a 0-d tensor, which holds it exactly
      const uint64_t u = get(uint64_t{});
      if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return Value::integer(static_cast<int64_t>(u));
    }
    case CKPT_DTYPE_F16: {  // every half is a double exactly
      const uint16_t h = get(uint16_t{});
      const int exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
      const double sign = (h >> 15) ? -1.0 : 1.0;
      if (exp == 0) return Value::floating(sign * std::ldexp(frac, -24));
      if (exp == 31) return Value::floating(frac ? std::nan("") : sign * HUGE_VAL);
      return Value::floating(sign * std::ldexp(frac + 1024, exp - 25));
    }
    default: return std::nullopt;
  }
}

}  // namespace

namespace {
// The names the mapping gives its own members (an object's class, a call's arguments, a raw
// array's dtype): a key or attribute of the user's spelled the same is written with its first
// '_' as %5F, which no other key gives (escape_name writes every '%' as %25).
std::string not_reserved(std::string name) {
  static const std::string_view reserved[] = {"__class__", "__call__", "__args__", "__state__", "__numpy_dtype__",
                                              "__shape__", "__order__", "__fields__"};
  for (std::string_view r : reserved)
    if (name == r) return "%5F" + name.substr(1);
  return name;
}
}  // namespace

std::string DocBuilder::key_name(const Obj* key, int depth) {
  std::string name = key_text(key, depth);
  return key->kind == Kind::string || key->kind == Kind::bytes ? not_reserved(std::move(name)) : name;
}

std::string DocBuilder::key_text(const Obj* key, int depth) {
  if (depth > kMaxDepth) fail(CKPT_ERR_LIMIT, "a dict key of tuples nested deeper than " + std::to_string(kMaxDepth) + " levels");
  switch (key->kind) {
    case Kind::string: return escape_name(from_python_str(static_cast<const Text*>(key)->str()));
    case Kind::bytes: return escape_name(static_cast<const Text*>(key)->str());
    case Kind::integer: return std::to_string(static_cast<const Scalar*>(key)->i);
    case Kind::boolean: return static_cast<const Scalar*>(key)->b ? "True" : "False";
    case Kind::none: return "None";
    case Kind::floating: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", static_cast<const Scalar*>(key)->f);
      return buf;
    }
    case Kind::tuple: {
      std::string s;
      for (const Obj* o : static_cast<const Seq*>(key)->items) s += (s.empty() ? "" : ",") + key_name(o, depth + 1);
      return "(" + s + ")";
    }
    case Kind::global: return escape_name(static_cast<const Global*>(key)->full());
    default: return std::string("<") + kind_name(key->kind) + ">";
  }
}

std::optional<Value> DocBuilder::attribute(const Obj* v) {
  switch (v->kind) {
    case Kind::boolean: return Value::boolean(static_cast<const Scalar*>(v)->b);
    case Kind::integer: return Value::integer(static_cast<const Scalar*>(v)->i);
    case Kind::floating: return Value::floating(static_cast<const Scalar*>(v)->f);
    case Kind::string: return Value::string(from_python_str(static_cast<const Text*>(v)->str()));
    case Kind::bytes: return Value::string(std::string(static_cast<const Text*>(v)->str()));
    case Kind::global: return Value::string(static_cast<const Global*>(v)->full());
    case Kind::dtype: return Value::string(static_cast<const DType*>(v)->spec);
    case Kind::array: {
      const auto* a = static_cast<const Array*>(v);
      if (a->scalar && a->raw_spec.empty()) return scalar_value(*a);
      return std::nullopt;
    }
    case Kind::list:
    case Kind::tuple: {
      // A list of one kind of scalar; ints among floats widen to floats, as NumPy would.
      const auto& items = static_cast<const Seq*>(v)->items;
      Value out;
      out.type = CKPT_VALUE_INT64_ARRAY;  // an empty list has no element type: int64[]
      bool any_float = false, any_int = false, any_bool = false, any_str = false;
      for (const Obj* x : items) {
        std::optional<Value> e = x->kind == Kind::list || x->kind == Kind::tuple ? std::nullopt : attribute(x);
        if (!e) return std::nullopt;
        any_float |= e->type == CKPT_VALUE_FLOAT64;
        any_int |= e->type == CKPT_VALUE_INT64;
        any_bool |= e->type == CKPT_VALUE_BOOL;
        any_str |= e->type == CKPT_VALUE_STRING;
      }
      if (any_str + (any_float || any_int) + any_bool > 1) return std::nullopt;
      // Ints widen to floats only where a double holds them exactly.
      if (any_float && any_int)
        for (const Obj* x : items)
          if (const auto* i = static_cast<const Scalar*>(x); x->kind == Kind::integer && (i->i > (int64_t{1} << 53) || i->i < -(int64_t{1} << 53)))
            return std::nullopt;
      for (const Obj* x : items) {
        Value e = *attribute(x);
        if (any_str) out.strings.push_back(e.s);
        else if (any_bool) out.bools.push_back(e.b ? 1 : 0);
        else if (any_float) out.floats.push_back(e.type == CKPT_VALUE_FLOAT64 ? e.f : static_cast<double>(e.i));
        else out.ints.push_back(e.i);
      }
      out.type = any_str ? CKPT_VALUE_STRING_ARRAY
                 : any_bool ? CKPT_VALUE_BOOL_ARRAY
                 : any_float ? CKPT_VALUE_FLOAT64_ARRAY
                             : CKPT_VALUE_INT64_ARRAY;
      return out;
    }
    default: return std::nullopt;
  }
}

void DocBuilder::spend(uint64_t bytes, const std::string& path) {
  if (bytes > bytes_left_)
    fail(CKPT_ERR_LIMIT, (path.empty() ? std::string("the root") : path.substr(0, 200)) +
                             ": the pickle maps to a document of more than " + std::to_string(max_bytes_) +
                             " bytes (objects it shares are repeated wherever they appear; option max_document_bytes)");
  bytes_left_ -= bytes;
}

uint64_t DocBuilder::tensor(const Array& a, const std::string& path) {
  // The entry keeps its whole path and two vectors of dims, on top of the node that names it.
  spend(kTensorCost + 2 * path.size() + 16 * a.shape.size(), path);
  TensorEntry e;
  e.path = path;
  e.dtype = a.dtype;
  e.shape = a.shape;
  e.strides = a.strides;
  e.offset = a.offset;
  e.big_endian = a.big_endian;
  e.blob = resolve_(a);
  tensors_.push_back(std::move(e));
  return tensors_.size() - 1;
}

void DocBuilder::put(Node& group, const std::string& key, const Obj* value, const std::string& path, int depth) {
  if (depth > kMaxDepth) fail(CKPT_ERR_LIMIT, path + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
  if (value->kind == Kind::none) {
    std::string p = path.empty() ? key : path + "/" + key;
    spend(16 + p.size(), p);  // what the path costs: a shared None must not list 2^30 of them
    nones_.push_back(std::move(p));
    return;
  }
  if (auto a = attribute(value)) {
    uint64_t cost = kAttributeCost + key.size() + a->s.size() + a->bools.size() + 8 * (a->ints.size() + a->floats.size());
    for (const auto& s : a->strings) cost += 32 + s.size();
    spend(cost, path);
    group.set(group.unused_attribute_name(key), std::move(*a));
    return;
  }
  const std::string name = unique_child_name(group, key);
  const std::string p = path.empty() ? name : path + "/" + name;
  switch (value->kind) {
    case Kind::array: {
      const auto* a = static_cast<const Array*>(value);
      if (a->raw_spec.empty()) return group.add_tensor(name, tensor(*a, p));
      // An array of a dtype ckpt has no type for: its bytes, and what NumPy makes of them.
      spend(kGroupCost + name.size() + 64 + a->raw_spec.size() + 8 * a->raw_shape.size(), p);
      Node& g = group.add_group(name);
      g.set("__numpy_dtype__", Value::string(a->raw_spec));
      Value shape;
      shape.type = CKPT_VALUE_INT64_ARRAY;
      shape.ints = a->raw_shape;
      g.set("__shape__", std::move(shape));
      if (a->raw_fortran) g.set("__order__", Value::string("F"));
      if (!a->raw_fields.empty()) {
        Value fields;
        fields.type = CKPT_VALUE_STRING_ARRAY;
        fields.strings = a->raw_fields;
        g.set("__fields__", std::move(fields));
      }
      g.add_tensor("data", tensor(*a, p + "/data"));
      return;
    }
    case Kind::dict:
    case Kind::record:
    case Kind::list:
    case Kind::tuple:
      spend(kGroupCost + name.size(), p);
      fill(group.add_group(name), value, p, depth + 1);
      return;
    case Kind::storage: fail(CKPT_ERR_UNSUPPORTED, p + ": a bare storage (not viewed by a tensor)");
    default: fail(CKPT_ERR_UNSUPPORTED, p + ": a " + std::string(kind_name(value->kind)) + " value");
  }
}

void DocBuilder::fill(Node& group, const Obj* container, const std::string& path, int depth) {
  if (depth > kMaxDepth) fail(CKPT_ERR_LIMIT, path + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
  switch (container->kind) {
    case Kind::dict:
      for (const auto& [k, v] : static_cast<const Dict*>(container)->entries) put(group, key_name(k), v, path, depth);
      return;
    case Kind::list:
    case Kind::tuple: {
      const auto& items = static_cast<const Seq*>(container)->items;
      for (size_t i = 0; i < items.size(); ++i) put(group, std::to_string(i), items[i], path, depth);
      return;
    }
    case Kind::record: {
      // An object of a class ckpt does not run: its class name and its attributes.
      const auto* r = static_cast<const Record*>(container);
      if (r->called) group.set("__call__", Value::string(r->cls + " (not run)"));
      else group.set("__class__", Value::string(r->cls));
      for (const auto& [k, v] : r->attributes) put(group, not_reserved(escape_name(k)), v, path, depth);
      if (r->args) put(group, "__args__", r->args, path, depth);
      if (r->state) put(group, "__state__", r->state, path, depth);
      return;
    }
    default: put(group, "value", container, path, depth);
  }
}

}  // namespace ckpt_pickle
