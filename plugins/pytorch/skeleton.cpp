#include "skeleton.hpp"

#include <ckpt/sdk_value.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstdio>

namespace ckpt_pytorch {

using ckpt::sdk::fail;
using ckpt_pickle::Value;
using ckpt_pickle::Node;
using json = nlohmann::json;

namespace {

constexpr const char* kFormat = "ckpt-pytorch";
constexpr int64_t kVersion = 1;
// Deeper than any document the host makes; bounds nlohmann's recursion on hostile input.
constexpr int kMaxDepth = 2200;

// Text that is not UTF-8 cannot be a JSON string: it goes as {"hex": "..."}.
json text(const std::string& s) {
  if (ckpt::sdk::valid_utf8(s)) return s;
  return json{{"hex", ckpt::sdk::to_hex(s)}};
}

std::string bits(double d) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(d)));
  return buf;
}

json value(const Value& v) {
  switch (v.type) {
    case CKPT_VALUE_BOOL: return v.b;
    case CKPT_VALUE_INT64: return v.i;
    case CKPT_VALUE_FLOAT64: return bits(v.f);
    case CKPT_VALUE_STRING: return text(v.s);
    case CKPT_VALUE_BOOL_ARRAY: {
      json a = json::array();
      for (uint8_t b : v.bools) a.push_back(b != 0);
      return a;
    }
    case CKPT_VALUE_INT64_ARRAY: return v.ints;
    case CKPT_VALUE_FLOAT64_ARRAY: {
      json a = json::array();
      for (double d : v.floats) a.push_back(bits(d));
      return a;
    }
    case CKPT_VALUE_STRING_ARRAY: {
      json a = json::array();
      for (const auto& s : v.strings) a.push_back(text(s));
      return a;
    }
    default: fail(CKPT_ERR_INTERNAL, "an attribute without a type");
  }
}

json group(const Node& g, const std::vector<SkeletonTensor>& tensors) {
  json attrs = json::array();
  for (const auto& [k, v] : g.attributes) attrs.push_back(json::array({text(k), ckpt::sdk::value_type_name(v.type), value(v)}));
  json children = json::array();
  for (const Node& c : g.children) {
    if (c.is_group) {
      children.push_back(json::array({text(c.name), group(c, tensors)}));
    } else {
      const SkeletonTensor& t = tensors.at(c.tensor_id);
      children.push_back(json::array({text(c.name), json{{"dtype", ckpt::sdk::dtype_name(t.dtype)}, {"shape", t.shape}, {"storage", t.key}}}));
    }
  }
  return json{{"attrs", std::move(attrs)}, {"children", std::move(children)}};
}

// ---- reading ------------------------------------------------------------------------------

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  fail(CKPT_ERR_FORMAT, std::string(kSkeletonName) + " (" + (where.empty() ? "<root>" : where) + "): " + what);
}

std::string untext(const json& j, const std::string& where) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("hex") && j["hex"].is_string()) {
    auto out = ckpt::sdk::from_hex(j["hex"].get_ref<const std::string&>());
    if (!out) bad(where, "bad hex text");
    return *out;
  }
  bad(where, "expected text");
}

double unbits(const json& j, const std::string& where) {
  if (!j.is_string() || j.get_ref<const std::string&>().size() != 16) bad(where, "expected 16 hex digits of a float64");
  unsigned long long u = 0;
  if (std::sscanf(j.get_ref<const std::string&>().c_str(), "%16llx", &u) != 1) bad(where, "bad float64 bits");
  return std::bit_cast<double>(static_cast<uint64_t>(u));
}

Value unvalue(const std::string& type, const json& j, const std::string& where) {
  Value v;
  auto need = [&](bool ok) {
    if (!ok) bad(where, "a " + type + " attribute of the wrong JSON type");
  };
  if (type == "bool") { need(j.is_boolean()); return Value::boolean(j.get<bool>()); }
  if (type == "int64") { need(j.is_number_integer()); return Value::integer(j.get<int64_t>()); }
  if (type == "float64") return Value::floating(unbits(j, where));
  if (type == "string") return Value::string(untext(j, where));
  need(j.is_array());
  if (type == "bool[]") {
    v.type = CKPT_VALUE_BOOL_ARRAY;
    for (const auto& x : j) { need(x.is_boolean()); v.bools.push_back(x.get<bool>() ? 1 : 0); }
  } else if (type == "int64[]") {
    v.type = CKPT_VALUE_INT64_ARRAY;
    for (const auto& x : j) { need(x.is_number_integer()); v.ints.push_back(x.get<int64_t>()); }
  } else if (type == "float64[]") {
    v.type = CKPT_VALUE_FLOAT64_ARRAY;
    for (const auto& x : j) v.floats.push_back(unbits(x, where));
  } else if (type == "string[]") {
    v.type = CKPT_VALUE_STRING_ARRAY;
    for (const auto& x : j) v.strings.push_back(untext(x, where));
  } else {
    bad(where, "unknown attribute type '" + type + "'");
  }
  return v;
}

void ungroup(const json& j, Node& g, const std::string& path,
             const std::function<uint64_t(const SkeletonTensor&, const std::string&)>& tensor) {
  if (!j.is_object() || !j.contains("attrs") || !j.contains("children") || !j["attrs"].is_array() || !j["children"].is_array())
    bad(path, "a group without attrs and children");
  for (const auto& a : j["attrs"]) {
    if (!a.is_array() || a.size() != 3 || !a[1].is_string()) bad(path, "an attribute that is not [name, type, value]");
    std::string name = untext(a[0], path);
    if (g.attribute(name)) bad(path, "attribute '" + name + "' twice");
    g.set(name, unvalue(a[1].get<std::string>(), a[2], path + "@" + name));
  }
  for (const auto& c : j["children"]) {
    if (!c.is_array() || c.size() != 2 || !c[1].is_object()) bad(path, "a child that is not [name, object]");
    std::string name = untext(c[0], path);
    if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
      bad(path, "an invalid name");
    if (g.child(name)) bad(path, "child '" + name + "' twice");
    const std::string p = path.empty() ? name : path + "/" + name;
    const json& o = c[1];
    if (o.contains("dtype")) {
      SkeletonTensor t;
      if (!o["dtype"].is_string() || !o.contains("shape") || !o["shape"].is_array() || !o.contains("storage") || !o["storage"].is_string())
        bad(p, "a tensor without dtype, shape and storage");
      t.dtype = ckpt::sdk::dtype_from_name(o["dtype"].get<std::string>());
      if (!t.dtype) bad(p, "unknown dtype '" + o["dtype"].get<std::string>() + "'");
      for (const auto& d : o["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) bad(p, "a dimension that is not a non-negative integer");
        t.shape.push_back(d.get<int64_t>());
      }
      t.key = o["storage"].get<std::string>();
      g.add_tensor(name, tensor(t, p));
    } else {
      Node& sub = g.add_group(name);
      ungroup(o, sub, p, tensor);
    }
  }
}

}  // namespace

std::string write_skeleton(const Node& root, const std::vector<SkeletonTensor>& tensors) {
  json doc{{"format", kFormat}, {"version", kVersion}, {"root", group(root, tensors)}};
  return doc.dump();
}

Node read_skeleton(std::span<const std::byte> bytes,
                   const std::function<uint64_t(const SkeletonTensor&, const std::string&)>& tensor) {
  if (ckpt::sdk::json_nesting(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())) > kMaxDepth) fail(CKPT_ERR_LIMIT, std::string(kSkeletonName) + ": nested deeper than " + std::to_string(kMaxDepth));
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (auto nul = ckpt::sdk::json_nul_problem(text); !nul.empty()) bad("", "not valid JSON: " + nul);
  json doc = json::parse(reinterpret_cast<const char*>(bytes.data()), reinterpret_cast<const char*>(bytes.data()) + bytes.size(),
                         nullptr, false);
  if (doc.is_discarded()) bad("", "not valid JSON");
  if (!doc.is_object() || doc.value("format", "") != kFormat) bad("", "not a ckpt-pytorch skeleton");
  if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"].get<int64_t>() > kVersion)
    fail(CKPT_ERR_UNSUPPORTED, std::string(kSkeletonName) + ": a layout version newer than " + std::to_string(kVersion));
  if (!doc.contains("root")) bad("", "no root");
  Node root;
  ungroup(doc["root"], root, "", tensor);
  return root;
}

}  // namespace ckpt_pytorch
