// The skeleton codec (ckpt/sdk_skeleton.hpp), compiled into libckpt_sdk_static.a so that its
// header stays free of nlohmann: a plugin that uses the codec needs no JSON library of its own,
// and one that has its own nlohmann of another release does not clash with this copy (nlohmann
// versions its inline namespace).
#include <ckpt/sdk_skeleton.hpp>

#include <ckpt/sdk_value.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>

namespace ckpt::sdk {

using nlohmann::json;

namespace {

constexpr uint64_t kCanonicalNan = 0x7ff8000000000000ull;

// ---- writing ------------------------------------------------------------------------------

// Appends JSON text as it goes: a skeleton of a million tensors costs no tree of JSON values.
// Leaves are dumped by nlohmann, so numbers and escapes are spelled as a dump of a json value
// spells them; an object's members come sorted by key, as nlohmann's std::map sorts them, or
// (keys_in_order) in the order given.
class SkeletonWriter {
 public:
  SkeletonWriter(const Tree& tree, const SkeletonKeys& keys, const std::function<std::string_view(size_t)>& location)
      : tree_(tree), keys_(keys), location_(location) {}

  std::string document() {
    Member members[] = {{"format", [&] { leaf(json(keys_.format)); }},
                        {"version", [&] { leaf(json(keys_.version)); }},
                        {"root", [&] { group(0, nullptr); }}};
    object(members);
    return take();
  }

  void value(const Value& v) {
    switch (v.type) {
      case CKPT_VALUE_BOOL: leaf(json(v.b)); break;
      case CKPT_VALUE_INT64: leaf(json(v.i)); break;
      case CKPT_VALUE_FLOAT64: number(v.f); break;
      case CKPT_VALUE_STRING: text(v.s); break;
      case CKPT_VALUE_BOOL_ARRAY: array(v.bools, [&](uint8_t b) { leaf(json(b != 0)); }); break;
      case CKPT_VALUE_INT64_ARRAY: array(v.ints, [&](int64_t i) { leaf(json(i)); }); break;
      case CKPT_VALUE_FLOAT64_ARRAY: array(v.floats, [&](double d) { number(d); }); break;
      case CKPT_VALUE_STRING_ARRAY: array(v.strings, [&](const std::string& s) { text(s); }); break;
      default: fail(CKPT_ERR_INTERNAL, "an attribute without a type");
    }
  }
  std::string take() { return std::move(out_); }

 private:
  using Member = std::pair<std::string_view, std::function<void()>>;

  // At most four members, kept on the stack: a tensor's object costs no allocation of its own.
  void object(std::span<Member> members) {
    if (!keys_.keys_in_order)
      std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.first < b.first; });
    out_ += '{';
    for (size_t i = 0; i < members.size(); ++i) {
      if (i) out_ += ',';
      leaf(json(members[i].first));
      out_ += ':';
      members[i].second();
    }
    out_ += '}';
  }
  template <class Items, class Each>
  void array(const Items& items, const Each& each) {
    out_ += '[';
    bool first = true;
    for (const auto& item : items) {
      if (!first) out_ += ',';
      first = false;
      each(item);
    }
    out_ += ']';
  }
  void leaf(const json& j) {
    try {
      serializer_.dump(j, false, false, 0);  // as j.dump() would, without a string of its own
    } catch (const json::type_error&) {  // only a string that is not UTF-8, with utf8_only
      fail(CKPT_ERR_UNSUPPORTED, "a string of the document is not valid UTF-8, and " + std::string(keys_.format) +
                                     " keeps strings as JSON text");
    }
  }
  void text(std::string_view s) {
    if (keys_.utf8_only || valid_utf8(s)) return leaf(json(s));
    Member members[] = {{"hex", [&] { leaf(json(to_hex(s))); }}};
    object(members);
  }
  static std::string bits(double d) {
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(d)));
    return buf;
  }
  void number(double d) {
    if (keys_.named_floats) {
      if (std::isfinite(d)) return leaf(json(d));
      if (std::isinf(d)) return leaf(json(d > 0 ? "Infinity" : "-Infinity"));
      return leaf(json(std::bit_cast<uint64_t>(d) == kCanonicalNan ? std::string("NaN") : "NaN:0x" + bits(d)));
    }
    if (keys_.floats_as_bits) return leaf(json(bits(d)));
    if (std::isfinite(d) && !(d == 0 && std::signbit(d))) return leaf(json(d));
    Member members[] = {{"bits", [&] { leaf(json(bits(d))); }}};
    object(members);
  }

  // `name`: the child's, when children name themselves. Recursion is bounded: the tree came from
  // a writer's calls or from read_skeleton, both of which bound the depth.
  void group(size_t g, const std::string* name) {
    const Tree::Group& group = tree_.groups[g];
    std::array<Member, 3> members;
    size_t n = 0;
    if (name) members[n++] = {"group", [&] { text(*name); }};
    if (!group.attributes.empty() || !keys_.omit_empty)
      members[n++] = {keys_.attributes, [&] { array(group.attributes, [&](const Tree::Attribute& a) { attribute(a); }); }};
    if (!group.children.empty() || !keys_.omit_empty)
      members[n++] = {keys_.children, [&] { array(group.children, [&](const Tree::Child& c) { child(c); }); }};
    object(std::span(members).first(n));
  }

  void attribute(const Tree::Attribute& a) {
    out_ += '[';
    text(a.name);
    out_ += ',';
    leaf(json(value_type_name(a.value.type)));
    out_ += ',';
    value(a.value);
    out_ += ']';
  }

  void child(const Tree::Child& c) {
    const std::string& name = c.is_tensor ? tree_.tensors[c.index].name : tree_.groups[c.index].name;
    if (!keys_.name_in_child) {
      out_ += '[';
      text(name);
      out_ += ',';
    }
    const std::string* named = keys_.name_in_child ? &name : nullptr;
    if (c.is_tensor) tensor(c.index, named);
    else group(c.index, named);
    if (!keys_.name_in_child) out_ += ']';
  }

  void tensor(size_t k, const std::string* name) {
    const Tree::Tensor& t = tree_.tensors[k];
    std::array<Member, 4> members;
    size_t n = 0;
    if (name) members[n++] = {"tensor", [&] { text(*name); }};
    if (!keys_.name_only_tensors) {
      members[n++] = {"dtype", [&] { leaf(json(dtype_name(t.dtype))); }};
      members[n++] = {"shape", [&] { leaf(json(t.shape)); }};
      members[n++] = {keys_.location, [&] { text(location_(k)); }};
    }
    object(std::span(members).first(n));
  }

  const Tree& tree_;
  const SkeletonKeys& keys_;
  const std::function<std::string_view(size_t)>& location_;
  std::string out_;
  nlohmann::detail::serializer<json> serializer_{nlohmann::detail::output_adapter<char>(out_), ' '};
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
    if (keys_.utf8_only) bad(path, std::string(what) + " must be a string");
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
    if (keys_.named_floats) {
      const std::string s = j.is_string() ? j.get<std::string>() : std::string();
      if (s == "Infinity" || s == "-Infinity") return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
      if (s == "NaN") return std::bit_cast<double>(kCanonicalNan);
      if (s.starts_with("NaN:0x"))
        if (auto d = from_bits(s.substr(6)); d && std::isnan(*d)) return *d;
      bad(path, "a float64 must be a number, \"NaN\", \"NaN:0x<16 hex digits of a NaN>\", \"Infinity\" or \"-Infinity\"");
    }
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
      if (keys_.name_only_tensors ? key != "tensor"
                                  : key != "dtype" && key != "shape" && key != keys_.location &&
                                        !(keys_.name_in_child && key == "tensor"))
        bad(cpath, "unknown key " + quote(key) + " in a tensor");
    Tree::Tensor t;
    t.name = std::move(name);
    if (keys_.name_only_tensors) {
      spend(sizeof(Tree::Tensor) + sizeof(Tree::Child) + t.name.size(), cpath);
      t.id = on_tensor_(t, std::string(), cpath);
      tree_.add_tensor(g, std::move(t));
      return;
    }
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

std::string write_value(const Value& value, const SkeletonKeys& keys) {
  const Tree none;
  const std::function<std::string_view(size_t)> no_location;
  SkeletonWriter w(none, keys, no_location);
  w.value(value);
  return w.take();
}

std::string write_skeleton(const Tree& tree, const SkeletonKeys& keys, const std::function<std::string_view(size_t)>& location) {
  return SkeletonWriter(tree, keys, location).document();
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
