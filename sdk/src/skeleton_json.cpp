// The skeleton codec (ckpt/sdk_skeleton.hpp), compiled into libckpt_sdk_static.a so that its
// header stays free of nlohmann: a plugin that uses the codec needs no JSON library of its own,
// and one that has its own nlohmann of another release does not clash with this copy (nlohmann
// versions its inline namespace).
#include <ckpt/sdk_skeleton.hpp>

#include <ckpt/sdk_value.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdio>

namespace ckpt::sdk {

using nlohmann::json;

namespace {

// ---- writing ------------------------------------------------------------------------------

json text(std::string_view s) {
  if (valid_utf8(s)) return json(std::string(s));
  return json{{"hex", to_hex(s)}};
}

std::string bits(double d) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(d)));
  return buf;
}

json number(double d, const SkeletonKeys& keys) {
  if (keys.floats_as_bits) return bits(d);
  if (std::isfinite(d) && !(d == 0 && std::signbit(d))) return json(d);
  return json{{"bits", bits(d)}};
}

json value_json(const Value& v, const SkeletonKeys& keys) {
  switch (v.type) {
    case CKPT_VALUE_BOOL: return json(v.b);
    case CKPT_VALUE_INT64: return json(v.i);
    case CKPT_VALUE_FLOAT64: return number(v.f, keys);
    case CKPT_VALUE_STRING: return text(v.s);
    case CKPT_VALUE_BOOL_ARRAY: {
      json a = json::array();
      for (uint8_t b : v.bools) a.push_back(b != 0);
      return a;
    }
    case CKPT_VALUE_INT64_ARRAY: return json(v.ints);
    case CKPT_VALUE_FLOAT64_ARRAY: {
      json a = json::array();
      for (double d : v.floats) a.push_back(number(d, keys));
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

class SkeletonWriter {
 public:
  SkeletonWriter(const Tree& tree, const SkeletonKeys& keys, const std::function<std::string_view(size_t)>& location)
      : tree_(tree), keys_(keys), location_(location) {}

  // Recursion is bounded: the tree came from a writer's calls or from read_skeleton, both of
  // which bound the depth.
  json group(size_t g) const {
    const Tree::Group& group = tree_.groups[g];
    json out = json::object();
    if (!group.attributes.empty() || !keys_.omit_empty) {
      json attrs = json::array();
      for (const Tree::Attribute& a : group.attributes)
        attrs.push_back(json::array({text(a.name), value_type_name(a.value.type), value(a.value)}));
      out[std::string(keys_.attributes)] = std::move(attrs);
    }
    if (!group.children.empty() || !keys_.omit_empty) {
      json children = json::array();
      for (const Tree::Child& c : group.children) {
        const std::string& name = c.is_tensor ? tree_.tensors[c.index].name : tree_.groups[c.index].name;
        json child = c.is_tensor ? tensor(c.index) : this->group(c.index);
        if (keys_.name_in_child) {
          child[c.is_tensor ? "tensor" : "group"] = text(name);
          children.push_back(std::move(child));
        } else {
          children.push_back(json::array({text(name), std::move(child)}));
        }
      }
      out[std::string(keys_.children)] = std::move(children);
    }
    return out;
  }

 private:
  json tensor(size_t k) const {
    const Tree::Tensor& t = tree_.tensors[k];
    return json{{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {std::string(keys_.location), text(location_(k))}};
  }

  json value(const Value& v) const { return value_json(v, keys_); }

  const Tree& tree_;
  const SkeletonKeys& keys_;
  const std::function<std::string_view(size_t)>& location_;
};

// ---- reading ------------------------------------------------------------------------------

std::string quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\'' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "'";
}

class SkeletonReader {
 public:
  SkeletonReader(Tree& tree, const SkeletonKeys& keys, const SkeletonSource& source, const OnSkeletonTensor& on_tensor)
      : tree_(tree), keys_(keys), source_(source), on_tensor_(on_tensor) {}

  void group(const json& j, size_t g, const std::string& path, size_t depth) {
    if (depth > keys_.max_depth)
      fail(CKPT_ERR_LIMIT, source_.where(path) + "groups nested deeper than " + std::to_string(keys_.max_depth) + " levels");
    if (!j.is_object()) bad(path, "a group must be a JSON object");
    for (const auto& [key, value] : j.items())
      if (key != keys_.attributes && key != keys_.children && !(keys_.name_in_child && key == "group"))
        bad(path, "unknown key " + quote(key) + " in a group");
    const json* attributes = member(j, keys_.attributes, path);
    const json* children = member(j, keys_.children, path);
    if (attributes)
      for (const json& a : *attributes) attribute(a, g, path);
    if (children)
      for (const json& c : *children) child(c, g, path, depth);
  }

 private:
  [[noreturn]] void bad(const std::string& path, const std::string& what) const {
    fail(CKPT_ERR_FORMAT, source_.where(path) + what);
  }

  const json* member(const json& j, std::string_view key, const std::string& path) const {
    auto it = j.find(key);
    if (it == j.end()) {
      if (!keys_.omit_empty) bad(path, "a group without " + quote(key));
      return nullptr;
    }
    if (!it->is_array()) bad(path, quote(key) + " must be an array");
    return &*it;
  }

  void spend(uint64_t bytes, const std::string& path) {
    spent_ += bytes;
    if (spent_ > source_.max_bytes)
      fail(CKPT_ERR_LIMIT, source_.where(path) + "the document costs more than " + std::to_string(source_.max_bytes) +
                               " bytes to hold (option max_document_bytes)");
  }

  std::string text_of(const json& j, const std::string& path, const char* what) const {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_object() && j.size() == 1 && j.contains("hex") && j["hex"].is_string())
      if (auto s = from_hex(j["hex"].get_ref<const std::string&>())) return *s;
    bad(path, std::string(what) + " must be a string or {\"hex\": ...}");
  }

  std::string name_of(const json& j, const std::string& path, const char* what) const {
    std::string n = text_of(j, path, what);
    if (n.empty() || n.find('/') != std::string::npos || n.find('\0') != std::string::npos)
      bad(path, std::string(what) + " " + quote(n) + " is empty or holds '/' or NUL");
    return n;
  }

  static std::optional<double> from_bits(const std::string& hex) {
    auto b = from_hex(hex);
    if (!b || b->size() != 8) return std::nullopt;
    uint64_t u = 0;
    for (char c : *b) u = (u << 8) | static_cast<uint8_t>(c);
    return std::bit_cast<double>(u);
  }

  double number_of(const json& j, const std::string& path) const {
    if (j.is_number()) return j.get<double>();
    const json* hex = j.is_string() ? &j : nullptr;
    if (j.is_object() && j.size() == 1 && j.contains("bits") && j["bits"].is_string()) hex = &j["bits"];
    if (hex)
      if (auto d = from_bits(hex->get_ref<const std::string&>())) return *d;
    bad(path, "a float64 must be a number, \"<16 hex digits>\" or {\"bits\": \"<16 hex digits>\"}");
  }

  int64_t int_of(const json& j, const std::string& path) const {
    if (j.is_number_integer()) {
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        bad(path, "integer " + j.dump() + " does not fit in int64");
      return j.get<int64_t>();
    }
    bad(path, "expected an integer, found " + std::string(j.type_name()));
  }

  void attribute(const json& a, size_t g, const std::string& path) {
    if (!a.is_array() || a.size() != 3 || !a[1].is_string()) bad(path, "an attribute must be [name, type, value]");
    std::string name = name_of(a[0], path, "attribute name");
    const std::string apath = (path.empty() ? "@" : path + "/@") + name;
    if (tree_.find_attribute(g, name)) bad(path, "duplicate attribute " + quote(name));
    Value v;
    v.type = value_type_from_name(a[1].get_ref<const std::string&>());
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
      default: bad(apath, "unknown attribute type " + quote(a[1].get_ref<const std::string&>()));
    }
    uint64_t cost = sizeof(Tree::Attribute) + name.size() + v.s.size() + v.bools.size() + 8 * v.ints.size() +
                    8 * v.floats.size();
    for (const auto& s : v.strings) cost += sizeof s + s.size();
    spend(cost, apath);
    tree_.add_attribute(g, std::move(name), std::move(v));
  }

  void child(const json& c, size_t g, const std::string& path, size_t depth) {
    std::string name;
    const json* body = &c;
    bool is_tensor;
    if (keys_.name_in_child) {
      if (!c.is_object()) bad(path, "a child must be a JSON object");
      is_tensor = c.contains("tensor");
      if (is_tensor == c.contains("group")) bad(path, "a child has exactly one of \"tensor\" and \"group\"");
      name = name_of(is_tensor ? c["tensor"] : c["group"], path, "child name");
    } else {
      if (!c.is_array() || c.size() != 2 || !c[1].is_object()) bad(path, "a child must be [name, object]");
      name = name_of(c[0], path, "child name");
      body = &c[1];
      is_tensor = body->contains("dtype");
    }
    const std::string cpath = path.empty() ? name : path + "/" + name;
    if (tree_.find_child(g, name)) bad(path, "duplicate child " + quote(name));
    if (!is_tensor) {
      spend(sizeof(Tree::Group) + sizeof(Tree::Child) + 64 + name.size(), cpath);
      group(*body, tree_.add_group(g, std::move(name)), cpath, depth + 1);
      return;
    }
    for (const auto& [key, value] : body->items())
      if (key != "dtype" && key != "shape" && key != keys_.location && !(keys_.name_in_child && key == "tensor"))
        bad(cpath, "unknown key " + quote(key) + " in a tensor");
    Tree::Tensor t;
    t.name = std::move(name);
    const json& o = *body;
    if (!o.contains("dtype") || !o["dtype"].is_string() ||
        !(t.dtype = dtype_from_name(o["dtype"].get_ref<const std::string&>())))
      bad(cpath, "\"dtype\" must name a dtype (f32, f64, f16, bf16, i8, u8, i16, i32, i64, bool, ...)");
    if (!o.contains("shape") || !o["shape"].is_array()) bad(cpath, "\"shape\" must be an array");
    for (const json& d : o["shape"]) {
      const int64_t n = int_of(d, cpath);
      if (n < 0) bad(cpath, "negative dimension " + std::to_string(n));
      t.shape.push_back(n);
    }
    t.nbytes = checked_nbytes(t.shape, dtype_size(t.dtype), source_.where(cpath) + "shape");
    const auto loc = o.find(keys_.location);
    if (loc == o.end()) bad(cpath, "a tensor names its " + quote(keys_.location));
    std::string location = text_of(*loc, cpath, "the tensor's location");
    spend(sizeof(Tree::Tensor) + sizeof(Tree::Child) + t.name.size() + 8 * t.shape.size() + location.size(), cpath);
    t.id = on_tensor_(t, std::move(location), cpath);
    tree_.add_tensor(g, std::move(t));
  }

  Tree& tree_;
  const SkeletonKeys& keys_;
  const SkeletonSource& source_;
  const OnSkeletonTensor& on_tensor_;
  uint64_t spent_ = 0;
};

}  // namespace

std::string write_value(const Value& value, const SkeletonKeys& keys) { return value_json(value, keys).dump(); }

std::string write_skeleton(const Tree& tree, const SkeletonKeys& keys, const std::function<std::string_view(size_t)>& location) {
  const json doc = {{"format", keys.format}, {"version", keys.version}, {"root", SkeletonWriter(tree, keys, location).group(0)}};
  return doc.dump();
}

Tree read_skeleton(std::string_view text, const SkeletonKeys& keys, const SkeletonSource& source,
                   const OnSkeletonTensor& on_tensor) {
  const std::string where = source.where("");
  // nlohmann's parser recurses per nesting level: bound it before parsing hostile text. A
  // group is at most three levels below its parent (children array, child, pair).
  if (json_nesting(text) > static_cast<int>(3 * keys.max_depth + 8))
    fail(CKPT_ERR_LIMIT, where + "groups nested deeper than " + std::to_string(keys.max_depth) + " levels");
  if (auto nul = json_nul_problem(text); !nul.empty()) fail(CKPT_ERR_FORMAT, where + "not valid JSON: " + nul);
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    fail(CKPT_ERR_FORMAT, where + "not valid JSON (" + e.what() + ")");
  }
  if (!doc.is_object() || doc.value("format", json()) != keys.format)
    fail(CKPT_ERR_FORMAT, where + "expected an object with \"format\": \"" + std::string(keys.format) + "\"");
  const json version = doc.value("version", json());
  if (!version.is_number_integer()) fail(CKPT_ERR_FORMAT, where + "\"version\" must be an integer");
  if (version.get<int64_t>() != keys.version)
    fail(version.get<int64_t>() > keys.version ? CKPT_ERR_UNSUPPORTED : CKPT_ERR_FORMAT,
         where + "layout version " + version.dump() + " is not understood by this reader (it reads " +
             std::to_string(keys.version) + ")");
  if (!doc.contains("root")) fail(CKPT_ERR_FORMAT, where + "no \"root\" group");
  Tree tree(true);
  SkeletonReader(tree, keys, source, on_tensor).group(doc["root"], 0, "", 0);
  return tree;
}

}  // namespace ckpt::sdk
