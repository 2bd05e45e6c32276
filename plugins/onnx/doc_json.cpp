#include "doc_json.hpp"

#include "onnx_layout.hpp"
#include "text.hpp"

#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdio>
#include <unordered_set>

namespace ckpt_onnx {

using ckpt::sdk::fail;
using ckpt::sdk::value_type_from_name;
using ckpt::sdk::value_type_name;
using nlohmann::json;

namespace {

constexpr std::string_view kFormat = "ckpt-onnx-document";

// ---- encoding ----

json text(std::string_view s) {
  if (valid_utf8(s)) return json(std::string(s));
  return json{{"hex", to_hex(s)}};
}

json number(double d) {
  if (std::isfinite(d) && !(d == 0 && std::signbit(d))) return json(d);
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(d)));
  return json{{"bits", buf}};
}

json value_json(const Value& v) {
  switch (v.type) {
    case CKPT_VALUE_BOOL: return json(v.b);
    case CKPT_VALUE_INT64: return json(v.i);
    case CKPT_VALUE_FLOAT64: return number(v.f);
    case CKPT_VALUE_STRING: return text(v.s);
    case CKPT_VALUE_BOOL_ARRAY: {
      json a = json::array();
      for (uint8_t b : v.bools) a.push_back(b != 0);
      return a;
    }
    case CKPT_VALUE_INT64_ARRAY: return json(v.ints);
    case CKPT_VALUE_FLOAT64_ARRAY: {
      json a = json::array();
      for (double d : v.floats) a.push_back(number(d));
      return a;
    }
    case CKPT_VALUE_STRING_ARRAY: {
      json a = json::array();
      for (const auto& s : v.strings) a.push_back(text(s));
      return a;
    }
    default: fail(CKPT_ERR_INTERNAL, "attribute with no type");
  }
}

json group_json(const Tree& tree, const GroupNode& g) {
  json out = json::object();
  if (!g.attributes.empty()) {
    json attrs = json::array();
    for (const Attribute& a : g.attributes)
      attrs.push_back(json::array({text(a.name), value_type_name(a.value.type), value_json(a.value)}));
    out["attributes"] = std::move(attrs);
  }
  if (!g.children.empty()) {
    json children = json::array();
    for (const Child& c : g.children) {
      if (c.is_tensor) {
        const TensorNode& t = tree.tensors[c.index];
        children.push_back({{"tensor", text(t.name)},
                            {"dtype", ckpt::sdk::dtype_name(t.dtype)},
                            {"shape", t.shape},
                            {"initializer", text(t.initializer)}});
      } else {
        json child = group_json(tree, tree.groups[c.index]);
        child["group"] = text(tree.groups[c.index].name);
        children.push_back(std::move(child));
      }
    }
    out["children"] = std::move(children);
  }
  return out;
}

// ---- decoding ----

class Decoder {
 public:
  Decoder(Tree& tree, const std::string& source) : tree_(tree), source_(source) {}

  void group(const json& j, size_t g, const std::string& path, size_t depth) {
    if (depth > kMaxDepth)
      fail(CKPT_ERR_LIMIT, where(path) + "groups nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (!j.is_object()) bad(path, "a group must be a JSON object");
    for (const auto& [key, value] : j.items())
      if (key != "attributes" && key != "children" && key != "group")
        bad(path, "unknown key " + quote_text(key) + " in a group");
    std::unordered_set<std::string> names;
    if (auto it = j.find("attributes"); it != j.end()) {
      if (!it->is_array()) bad(path, "\"attributes\" must be an array");
      for (const json& a : *it) attribute(a, g, path, names);
    }
    names.clear();
    if (auto it = j.find("children"); it != j.end()) {
      if (!it->is_array()) bad(path, "\"children\" must be an array");
      for (const json& c : *it) child(c, g, path, names, depth);
    }
  }

 private:
  std::string where(const std::string& path) const {
    return "'" + source_ + "': metadata " + std::string(kDocumentKey) + " at " +
           (path.empty() ? std::string("the root group") : quote_text(path)) + ": ";
  }
  [[noreturn]] void bad(const std::string& path, const std::string& what) const {
    fail(CKPT_ERR_FORMAT, where(path) + what);
  }

  std::string text_of(const json& j, const std::string& path, const char* what) const {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_object() && j.size() == 1 && j.contains("hex") && j["hex"].is_string())
      if (auto s = from_hex(j["hex"].get<std::string>())) return *s;
    bad(path, std::string(what) + " must be a string or {\"hex\": ...}");
  }

  std::string name_of(const json& j, const std::string& path, const char* what) const {
    std::string n = text_of(j, path, what);
    if (n.empty() || n.find('/') != std::string::npos || n.find('\0') != std::string::npos)
      bad(path, std::string(what) + " " + quote_text(n) + " is empty or holds '/' or NUL");
    return n;
  }

  double number_of(const json& j, const std::string& path) const {
    if (j.is_number()) return j.get<double>();
    if (j.is_object() && j.size() == 1 && j.contains("bits") && j["bits"].is_string()) {
      const std::string bits = j["bits"].get<std::string>();
      if (auto b = from_hex(bits); b && b->size() == 8) {
        uint64_t u = 0;
        for (char c : *b) u = (u << 8) | static_cast<uint8_t>(c);
        return std::bit_cast<double>(u);
      }
    }
    bad(path, "a float64 must be a number or {\"bits\": \"<16 hex digits>\"}");
  }

  int64_t int_of(const json& j, const std::string& path) const {
    if (j.is_number_integer()) {
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        bad(path, "integer " + j.dump() + " does not fit in int64");
      return j.get<int64_t>();
    }
    bad(path, "expected an integer, found " + std::string(j.type_name()));
  }

  void attribute(const json& a, size_t g, const std::string& path, std::unordered_set<std::string>& names) {
    if (!a.is_array() || a.size() != 3 || !a[1].is_string())
      bad(path, "an attribute must be [name, type, value]");
    std::string name = name_of(a[0], path, "attribute name");
    const std::string apath = (path.empty() ? "@" : path + "/@") + name;
    if (!names.insert(name).second) bad(path, "duplicate attribute " + quote_text(name));
    Value v;
    v.type = value_type_from_name(a[1].get<std::string>());
    const json& j = a[2];
    auto array = [&]() -> const json& {
      if (!j.is_array()) bad(apath, std::string("a ") + value_type_name(v.type) + " value must be an array");
      return j;
    };
    switch (v.type) {
      case CKPT_VALUE_BOOL:
        if (!j.is_boolean()) bad(apath, "expected true or false");
        v.b = j.get<bool>();
        break;
      case CKPT_VALUE_INT64: v.i = int_of(j, apath); break;
      case CKPT_VALUE_FLOAT64: v.f = number_of(j, apath); break;
      case CKPT_VALUE_STRING: v.s = text_of(j, apath, "a string value"); break;
      case CKPT_VALUE_BOOL_ARRAY:
        for (const json& e : array()) {
          if (!e.is_boolean()) bad(apath, "a bool[] holds only true and false");
          v.bools.push_back(e.get<bool>() ? 1 : 0);
        }
        break;
      case CKPT_VALUE_INT64_ARRAY:
        for (const json& e : array()) v.ints.push_back(int_of(e, apath));
        break;
      case CKPT_VALUE_FLOAT64_ARRAY:
        for (const json& e : array()) v.floats.push_back(number_of(e, apath));
        break;
      case CKPT_VALUE_STRING_ARRAY:
        for (const json& e : array()) v.strings.push_back(text_of(e, apath, "a string[] element"));
        break;
      default: bad(apath, "unknown attribute type " + quote_text(a[1].get<std::string>()));
    }
    tree_.set(g, std::move(name), std::move(v));
  }

  void child(const json& c, size_t g, const std::string& path, std::unordered_set<std::string>& names,
             size_t depth) {
    if (!c.is_object()) bad(path, "a child must be a JSON object");
    const bool is_tensor = c.contains("tensor"), is_group = c.contains("group");
    if (is_tensor == is_group) bad(path, "a child has exactly one of \"tensor\" and \"group\"");
    std::string name = name_of(is_tensor ? c["tensor"] : c["group"], path, "child name");
    const std::string cpath = path.empty() ? name : path + "/" + name;
    if (!names.insert(name).second) bad(path, "duplicate child " + quote_text(name));
    if (is_group) {
      group(c, tree_.add_group(g, std::move(name)), cpath, depth + 1);
      return;
    }
    for (const auto& [key, value] : c.items())
      if (key != "tensor" && key != "dtype" && key != "shape" && key != "initializer")
        bad(cpath, "unknown key " + quote_text(key) + " in a tensor");
    TensorNode t;
    t.name = std::move(name);
    if (!c.contains("dtype") || !c["dtype"].is_string() ||
        !(t.dtype = ckpt::sdk::dtype_from_name(c["dtype"].get<std::string>())))
      bad(cpath, "\"dtype\" must name a dtype (f32, f64, f16, bf16, i8, u8, i16, i32, i64, bool)");
    if (!c.contains("shape") || !c["shape"].is_array()) bad(cpath, "\"shape\" must be an array");
    for (const json& d : c["shape"]) {
      const int64_t n = int_of(d, cpath);
      if (n < 0) bad(cpath, "negative dimension " + std::to_string(n));
      t.shape.push_back(n);
    }
    t.nbytes = ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), where(cpath) + "shape");
    if (!c.contains("initializer")) bad(cpath, "a tensor names its \"initializer\"");
    t.initializer = text_of(c["initializer"], cpath, "\"initializer\"");
    tree_.add_tensor(g, std::move(t));
  }

  Tree& tree_;
  const std::string& source_;
};

}  // namespace

std::string tree_to_json(const Tree& tree) {
  json doc = {{"format", kFormat}, {"version", kDocumentVersion}, {"root", group_json(tree, tree.root())}};
  return doc.dump();
}

Tree tree_from_json(std::string_view text, const std::string& source) {
  const std::string where = "'" + source + "': metadata " + std::string(kDocumentKey) + ": ";
  json doc;
  if (auto nul = ckpt::sdk::json_nul_problem(text); !nul.empty()) fail(CKPT_ERR_FORMAT, where + "not valid JSON: " + nul);
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    fail(CKPT_ERR_FORMAT, where + "not valid JSON (" + e.what() + ")");
  }
  if (!doc.is_object() || doc.value("format", json()) != kFormat)
    fail(CKPT_ERR_FORMAT, where + "expected an object with \"format\": \"" + std::string(kFormat) + "\"");
  const json version = doc.value("version", json());
  if (!version.is_number_integer())
    fail(CKPT_ERR_FORMAT, where + "\"version\" must be an integer");
  if (version.get<int64_t>() != kDocumentVersion)
    fail(version.get<int64_t>() > kDocumentVersion ? CKPT_ERR_UNSUPPORTED : CKPT_ERR_FORMAT,
         where + "layout version " + version.dump() + " is not understood by this reader (it reads " +
             std::to_string(kDocumentVersion) + ")");
  if (!doc.contains("root")) fail(CKPT_ERR_FORMAT, where + "no \"root\" group");
  Tree tree;
  Decoder(tree, source).group(doc["root"], 0, "", 0);
  return tree;
}

std::string value_as_text(const Value& v) {
  if (v.type == CKPT_VALUE_STRING && valid_utf8(v.s)) return v.s;
  return value_json(v).dump();
}

}  // namespace ckpt_onnx
