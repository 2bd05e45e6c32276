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
#include <deque>
#include <unordered_set>

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

// The codec's own words for what a text's kind of name or string is.
std::string_view text_kind(std::string_view kind) {
  if (kind == "attribute") return "attribute name";
  if (kind == "value") return "a string value";
  if (kind == "element") return "a string[] element";
  if (kind == "location") return "the tensor's location";
  return "child name";  // "tensor", "group", "child"
}

// Builds the owning Tree that read_skeleton returns, with the checks and words it always had.
class TreeSink final : public SkeletonSink {
 public:
  using Fault = std::function<void(SkeletonFault)>;
  TreeSink(Tree& tree, const OnSkeletonTensor& on_tensor, Fault fault)
      : tree_(tree), on_tensor_(on_tensor), fault_(std::move(fault)) {}

  void child_name(size_t parent, std::string_view name, const SkeletonPlace& at) override {
    if (tree_.find_child(parent, name)) fault_({.problem = SkeletonProblem::duplicate_child, .at = at, .name = name});
  }
  size_t group(size_t parent, std::string_view name, const SkeletonPlace&) override {
    return tree_.add_group(parent, std::string(name));
  }
  void attribute_name(size_t group, std::string_view name, const SkeletonPlace& at) override {
    if (tree_.find_attribute(group, name))
      fault_({.problem = SkeletonProblem::duplicate_attribute, .at = at, .name = name});
  }
  void attribute(size_t group, std::string_view name, ValueView&& v, const SkeletonPlace&) override {
    Value o;
    o.type = v.type;
    o.b = v.b;
    o.i = v.i;
    o.f = v.f;
    o.s = std::string(v.s);
    o.bools = std::move(v.bools);
    o.ints = std::move(v.ints);
    o.floats = std::move(v.floats);
    o.strings.reserve(v.strings.size());
    for (const ckpt_str& e : v.strings) o.strings.emplace_back(e.data, e.size);
    tree_.add_attribute(group, std::string(name), std::move(o));
  }
  void tensor(size_t parent, ViewTree::Tensor&& v, std::string_view location, std::string_view path,
              const SkeletonPlace&) override {
    Tree::Tensor t;
    t.name = std::string(v.name);
    t.dtype = v.dtype;
    t.shape = std::move(v.shape);
    t.nbytes = v.nbytes;
    t.id = on_tensor_(t, std::string(location), std::string(path));
    tree_.add_tensor(parent, std::move(t));
  }

 private:
  Tree& tree_;
  const OnSkeletonTensor& on_tensor_;
  Fault fault_;
};

class SkeletonReader {
 public:
  SkeletonReader(const SkeletonKeys& keys, const SkeletonSource& source, SkeletonSink& sink)
      : keys_(keys), source_(source), sink_(sink) {}

  [[noreturn]] void fault(const SkeletonFault& f) const {
    using P = SkeletonProblem;
    ckpt_status_code code = CKPT_ERR_FORMAT;
    if (f.problem == P::text_too_deep || f.problem == P::too_many_values || f.problem == P::group_too_deep ||
        f.problem == P::too_costly)
      code = CKPT_ERR_LIMIT;
    if (f.problem == P::version_unknown && f.number > keys_.version) code = CKPT_ERR_UNSUPPORTED;
    fail(code, source_.describe ? source_.describe(f) : prefix(f.at.path) + skeleton_words(f, keys_));
  }
  std::string prefix(std::string_view path) const { return source_.where ? source_.where(std::string(path)) : ""; }
  // A fault of the text as a whole.
  [[noreturn]] void text_fault(SkeletonProblem p, std::string_view detail = {}, int64_t number = 0) const {
    fault({.problem = p, .at = {}, .detail = detail, .number = number});
  }

  void read(std::string_view text) {
    // nlohmann's parser recurses per nesting level: bound it before parsing hostile text.
    if (json_nesting(text) > static_cast<int>(keys_.levels_per_group * keys_.max_depth + 8))
      text_fault(SkeletonProblem::text_too_deep);
    if (auto nul = json_nul_problem(text); !nul.empty()) text_fault(SkeletonProblem::text_has_nul, nul);
    json doc;
    try {
      doc = parse(text);
    } catch (const json::parse_error& e) {
      text_fault(SkeletonProblem::text_not_json, e.what(), static_cast<int64_t>(e.byte));
    }
    document(doc);
  }

 private:
  // Parses the text into the DOM, refusing duplicate keys and counting values as the keys ask.
  json parse(std::string_view text) const {
    if (!keys_.strict_keys && !keys_.max_values) return json::parse(text.begin(), text.end());
    // Per open object, the keys seen: a skeleton's objects have a few, compared in place; one
    // of many (a hostile text's) switches to a hash set.
    struct Keys {
      std::vector<std::string> few;
      size_t n = 0;
      std::unordered_set<std::string> many;
    };
    constexpr size_t kFew = 16;
    std::vector<Keys> open;
    size_t depth = 0;
    size_t values = 0;
    auto callback = [&](int, json::parse_event_t event, json& parsed) {
      if (event != json::parse_event_t::key && event != json::parse_event_t::object_end &&
          event != json::parse_event_t::array_end && keys_.max_values && ++values > keys_.max_values)
        text_fault(SkeletonProblem::too_many_values, {}, static_cast<int64_t>(keys_.max_values));
      if (!keys_.strict_keys) return true;
      if (event == json::parse_event_t::object_start) {
        if (depth == open.size()) open.emplace_back();
        Keys& k = open[depth++];
        k.n = 0;
        k.many.clear();
      } else if (event == json::parse_event_t::object_end) {
        --depth;
      } else if (event == json::parse_event_t::key) {
        Keys& k = open[depth - 1];
        const std::string& key = parsed.get_ref<const std::string&>();
        bool seen = false;
        if (k.n < kFew) {
          for (size_t i = 0; i < k.n && !seen; ++i) seen = k.few[i] == key;
          if (!seen) {
            if (k.few.size() == k.n) k.few.emplace_back();
            k.few[k.n].assign(key);
          }
        } else {
          if (k.many.empty()) k.many.insert(k.few.begin(), k.few.end());
          seen = !k.many.insert(key).second;
        }
        if (seen) fault({.problem = SkeletonProblem::duplicate_key, .at = {}, .name = key});
        ++k.n;
      }
      return true;
    };
    return json::parse(text.begin(), text.end(), callback);
  }

  void document(const json& doc) {
    if (!doc.is_object()) text_fault(SkeletonProblem::not_an_object);
    if (keys_.strict_keys)
      for (const auto& [key, value] : doc.items())
        if (key != "format" && key != "version" && key != "root")
          fault({.problem = SkeletonProblem::unknown_top_key, .at = {}, .name = key});
    if (doc.value("format", json()) != keys_.format)
      at({"format"}, {.problem = SkeletonProblem::wrong_format, .name = keys_.format});
    const json version = doc.value("version", json());
    if (!version.is_number_integer()) at({"version"}, {.problem = SkeletonProblem::version_not_integer});
    if (version.get<int64_t>() != keys_.version) {
      const std::string text = version.dump();
      at({"version"}, {.problem = SkeletonProblem::version_unknown, .detail = text, .number = version.get<int64_t>()});
    }
    const auto root = doc.find("root");
    if (root == doc.end()) at({"root"}, {.problem = SkeletonProblem::no_root});
    steps_.push_back({"root"});
    group(*root, 0, 0);
  }
  SkeletonPlace place(std::string_view path) const { return {path, steps_}; }
  // A fault at the top of the document, under `key`.
  [[noreturn]] void at(SkeletonStep key, SkeletonFault f) const {
    f.at = {"", std::span(&key, 1)};
    fault(f);
  }
  [[noreturn]] void bad(SkeletonProblem p, std::string_view path, std::string_view name = {}, std::string_view detail = {},
                        int64_t number = 0, bool root = false) const {
    fault({.problem = p, .at = place(path), .name = name, .detail = detail, .number = number, .root = root});
  }
  struct Step {  // pushes a step for its scope
    std::vector<SkeletonStep>& steps;
    Step(std::vector<SkeletonStep>& s, SkeletonStep step) : steps(s) { steps.push_back(step); }
    ~Step() { steps.pop_back(); }
  };

  void group(const json& j, size_t g, size_t depth) {
    const bool root = depth == 0;
    if (depth > keys_.max_depth)
      bad(SkeletonProblem::group_too_deep, path_, {}, {}, static_cast<int64_t>(keys_.max_depth));
    if (!j.is_object()) bad(SkeletonProblem::group_not_object, path_, {}, {}, 0, root);
    for (const auto& [key, value] : j.items())
      if (key != keys_.attributes && key != keys_.children &&
          !(keys_.name_in_child && key == "group" && !(root && keys_.strict_keys)))
        bad(SkeletonProblem::unknown_group_key, path_, key, {}, 0, root);
    const json* attributes = list(j, keys_.attributes);
    // With strict_keys (safetensors' rules) the child list is checked after the attributes are
    // read, as that format's reader always did; otherwise both before either is read.
    const json* children = keys_.strict_keys ? nullptr : list(j, keys_.children);
    if (attributes) {
      Step s(steps_, {keys_.attributes});
      for (size_t i = 0; i < attributes->size(); ++i) {
        Step e(steps_, {{}, i});
        attribute((*attributes)[i], g);
      }
    }
    if (keys_.strict_keys) children = list(j, keys_.children);
    if (children) {
      Step s(steps_, {keys_.children});
      for (size_t i = 0; i < children->size(); ++i) {
        Step e(steps_, {{}, i});
        child((*children)[i], g, depth);
      }
    }
  }

  const json* list(const json& j, std::string_view key) const {
    auto it = j.find(key);
    if (it == j.end()) {
      if (!keys_.omit_empty && !keys_.lists_optional) bad(SkeletonProblem::list_missing, path_, key);
      return nullptr;
    }
    if (!it->is_array()) {
      Step s(steps_, {key});
      bad(SkeletonProblem::list_not_array, path_, key);
    }
    return &*it;
  }

  void spend(uint64_t bytes, std::string_view path) {
    spent_ += bytes;
    if (spent_ > source_.max_bytes) bad(SkeletonProblem::too_costly, path, {}, {}, static_cast<int64_t>(source_.max_bytes));
  }

  // A name or string as text: a view into the DOM, or into `scratch` when it was spelled in
  // hex. `kind` says which for a message; `path` is the place the codec's words name.
  std::string_view text_of(const json& j, std::string_view path, std::string_view kind, std::string& scratch) const {
    if (j.is_string()) return j.get_ref<const std::string&>();
    if (!keys_.utf8_only && j.is_object() && j.size() == 1 && j.contains("hex") && j["hex"].is_string())
      if (auto s = from_hex(j["hex"].get_ref<const std::string&>())) return scratch = std::move(*s);
    bad(SkeletonProblem::not_text, path, {}, kind);
  }

  void check_name(std::string_view n, std::string_view path, std::string_view kind) const {
    if (n.empty() || n.find('/') != std::string_view::npos || n.find('\0') != std::string_view::npos)
      bad(SkeletonProblem::bad_name, path, n, kind);
  }

  static std::optional<double> from_bits(std::string_view hex) {
    auto b = from_hex(hex);
    if (!b || b->size() != 8) return std::nullopt;
    uint64_t u = 0;
    for (char c : *b) u = (u << 8) | static_cast<uint8_t>(c);
    return std::bit_cast<double>(u);
  }
  // "NaN:0x" and 16 lowercase hex digits of a NaN, as the writer spells one.
  static std::optional<double> named_nan(std::string_view s) {
    if (s.size() != 22 || !s.starts_with("NaN:0x")) return std::nullopt;
    uint64_t bits = 0;
    for (char c : s.substr(6)) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      bits = bits << 4 | static_cast<uint64_t>(d);
    }
    const double v = std::bit_cast<double>(bits);
    return std::isnan(v) ? std::optional(v) : std::nullopt;
  }

  // Faults of an attribute's value: the codec's words name the attribute's path ("g/@name").
  [[noreturn]] void value_fault(SkeletonProblem p, std::string_view name = {}, std::string_view detail = {},
                                bool element = false, bool found_text = false) const {
    const std::string apath = value_path();
    fault({.problem = p, .at = place(apath), .name = name, .detail = detail, .element = element, .found_text = found_text});
  }

  double number_of(const json& j, bool element) const {
    if (j.is_number()) return j.get<double>();
    if (keys_.named_floats) {
      if (j.is_string()) {
        const std::string& s = j.get_ref<const std::string&>();
        if (s == "Infinity" || s == "-Infinity") return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
        if (s == "NaN") return std::bit_cast<double>(kCanonicalNan);
        if (auto d = named_nan(s)) return *d;
        value_fault(SkeletonProblem::wrong_value, "float64", s, element, true);
      }
      value_fault(SkeletonProblem::wrong_value, "float64", j.type_name(), element);
    }
    const json* hex = j.is_string() ? &j : nullptr;
    if (j.is_object() && j.size() == 1 && j.contains("bits") && j["bits"].is_string()) hex = &j["bits"];
    if (hex)
      if (auto d = from_bits(hex->get_ref<const std::string&>())) return *d;
    value_fault(SkeletonProblem::wrong_value, "float64", j.type_name(), element);
  }

  int64_t int_of(const json& j, bool element) const {
    if (j.is_number_integer()) {
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        value_fault(SkeletonProblem::int_out_of_range, "int64", j.dump(), element);
      return j.get<int64_t>();
    }
    value_fault(SkeletonProblem::wrong_value, "int64", j.type_name(), element);
  }

  bool bool_of(const json& j, bool element) const {
    if (!j.is_boolean()) value_fault(SkeletonProblem::wrong_value, "bool", j.type_name(), element);
    return j.get<bool>();
  }

  std::string_view string_of(const json& j, bool element, std::string& scratch) const {
    if (j.is_string()) return j.get_ref<const std::string&>();
    if (!keys_.utf8_only && j.is_object() && j.size() == 1 && j.contains("hex") && j["hex"].is_string())
      if (auto s = from_hex(j["hex"].get_ref<const std::string&>())) return scratch = std::move(*s);
    value_fault(SkeletonProblem::not_text, {}, element ? "element" : "value");
  }

  void attribute(const json& a, size_t g) {
    if (!a.is_array() || a.size() != 3 || !a[1].is_string() || (keys_.utf8_only && !a[0].is_string()))
      bad(SkeletonProblem::attribute_not_triple, path_);
    std::string scratch;
    const std::string_view name = text_of(a[0], path_, "attribute", scratch);
    attribute_ = name;
    const std::string& type_name = a[1].get_ref<const std::string&>();
    ValueView v;
    v.type = value_type_from_name(type_name);
    auto check_type = [&] {
      if (v.type) return;
      Step t(steps_, {{}, 1});
      value_fault(SkeletonProblem::unknown_type, type_name);
    };
    // With strict_keys (safetensors' rules) the type is checked before the name, as that
    // format's reader always did; otherwise after it, as the codec always did.
    if (keys_.strict_keys) check_type();
    check_name(name, path_, "attribute");
    sink_.attribute_name(g, name, place(path_));
    check_type();
    const json& j = a[2];
    auto array = [&]() -> const json& {
      if (!j.is_array()) value_fault(SkeletonProblem::not_an_array, value_type_name(v.type));
      return j;
    };
    // Decoded ({"hex": ...}) strings, alive until the sink has the value (a deque moves none
    // of them as it grows).
    std::deque<std::string> decoded;
    uint64_t cost = sizeof(Tree::Attribute) + name.size();
    {
      Step value_step(steps_, {{}, 2});
      switch (v.type) {
        case CKPT_VALUE_BOOL: v.b = bool_of(j, false); break;
        case CKPT_VALUE_INT64: v.i = int_of(j, false); break;
        case CKPT_VALUE_FLOAT64: v.f = number_of(j, false); break;
        case CKPT_VALUE_STRING: {
          std::string s;
          v.s = string_of(j, false, s);
          if (!s.empty()) v.s = decoded.emplace_back(std::move(s));
          cost += v.s.size();
          break;
        }
        default: {
          const json& arr = array();
          for (size_t i = 0; i < arr.size(); ++i) {
            Step e(steps_, {{}, i});
            const json& el = arr[i];
            if (v.type == CKPT_VALUE_BOOL_ARRAY) v.bools.push_back(bool_of(el, true) ? 1 : 0);
            else if (v.type == CKPT_VALUE_INT64_ARRAY) v.ints.push_back(int_of(el, true));
            else if (v.type == CKPT_VALUE_FLOAT64_ARRAY) v.floats.push_back(number_of(el, true));
            else {
              std::string s;
              std::string_view sv = string_of(el, true, s);
              if (!s.empty()) sv = decoded.emplace_back(std::move(s));
              v.strings.push_back({sv.data(), sv.size()});
              cost += sizeof(std::string) + sv.size();
            }
          }
          cost += v.bools.size() + 8 * v.ints.size() + 8 * v.floats.size();
        }
      }
    }
    spend(cost, value_path());
    sink_.attribute(g, name, std::move(v), place(path_));
  }
  std::string value_path() const { return (path_.empty() ? "@" : path_ + "/@") + std::string(attribute_); }

  void child(const json& c, size_t g, size_t depth) {
    std::string scratch;
    std::string_view name;
    const json* body = &c;
    bool is_tensor;
    if (keys_.name_in_child) {
      if (!c.is_object()) bad(SkeletonProblem::child_not_object, path_);
      is_tensor = c.contains("tensor");
      if (keys_.name_only_tensors && is_tensor) {
        // {"tensor": name} alone: another key is the first thing wrong with it.
        for (const auto& [key, value] : c.items())
          if (key != "tensor") bad(SkeletonProblem::unknown_tensor_key, path_, key);
      }
      if (keys_.name_only_tensors ? !is_tensor && !c.contains("group") : is_tensor == c.contains("group"))
        bad(SkeletonProblem::child_kind, path_);
      if (is_tensor) {
        Step s(steps_, {"tensor"});
        name = text_of(c["tensor"], path_, "tensor", scratch);
      } else {
        name = text_of(c["group"], path_, "group", scratch);
      }
      check_name(name, path_, is_tensor ? "tensor" : "group");
    } else {
      if (!c.is_array() || c.size() != 2 || !c[1].is_object()) bad(SkeletonProblem::child_not_pair, path_);
      name = text_of(c[0], path_, "child", scratch);
      check_name(name, path_, "child");
      body = &c[1];
      is_tensor = body->contains("dtype");
    }
    sink_.child_name(g, name, place(path_));
    const size_t parent_size = path_.size();
    if (!path_.empty()) path_ += '/';
    path_ += name;
    if (!is_tensor) {
      const size_t made = sink_.group(g, name, place(std::string_view(path_).substr(0, parent_size)));
      spend(sizeof(Tree::Group) + sizeof(Tree::Child) + 64 + name.size(), path_);
      group(*body, made, depth + 1);
      path_.resize(parent_size);
      return;
    }
    ViewTree::Tensor t;
    t.name = name;
    std::string_view location;
    std::string location_scratch;
    if (keys_.name_only_tensors) {
      spend(sizeof(Tree::Tensor) + sizeof(Tree::Child) + name.size(), path_);
    } else {
      for (const auto& [key, value] : body->items())
        if (key != "dtype" && key != "shape" && key != keys_.location && !(keys_.name_in_child && key == "tensor"))
          bad(SkeletonProblem::unknown_tensor_key, path_, key);
      const json& o = *body;
      if (!o.contains("dtype") || !o["dtype"].is_string() ||
          !(t.dtype = dtype_from_name(o["dtype"].get_ref<const std::string&>())))
        bad(SkeletonProblem::bad_dtype, path_);
      if (!o.contains("shape") || !o["shape"].is_array()) bad(SkeletonProblem::bad_shape, path_);
      for (const json& d : o["shape"]) {
        if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
          bad(d.is_number_integer() ? SkeletonProblem::int_out_of_range : SkeletonProblem::wrong_value, path_, "int64",
              d.is_number_integer() ? d.dump() : std::string(d.type_name()));
        const int64_t n = d.get<int64_t>();
        if (n < 0) bad(SkeletonProblem::negative_dimension, path_, {}, {}, n);
        t.shape.push_back(n);
      }
      t.nbytes = checked_nbytes(t.shape, dtype_size(t.dtype), prefix(path_) + "shape");
      const auto loc = o.find(keys_.location);
      if (loc == o.end()) bad(SkeletonProblem::no_location, path_, keys_.location);
      location = text_of(*loc, path_, "location", location_scratch);
      spend(sizeof(Tree::Tensor) + sizeof(Tree::Child) + name.size() + 8 * t.shape.size() + location.size(), path_);
    }
    sink_.tensor(g, std::move(t), location, path_, place(std::string_view(path_).substr(0, parent_size)));
    path_.resize(parent_size);
  }

  const SkeletonKeys& keys_;
  const SkeletonSource& source_;
  SkeletonSink& sink_;
  mutable std::vector<SkeletonStep> steps_;  // mutable: a fault's place is pushed as it is reported
  std::string path_;              // the open group's document path
  std::string_view attribute_;    // the attribute being read, for its values' places
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

std::string json_pointer(std::span<const SkeletonStep> steps) {
  std::string out;
  for (const SkeletonStep& s : steps) {
    out += '/';
    if (s.key.empty()) out += std::to_string(s.index);
    else out += s.key;
  }
  return out;
}

std::string skeleton_words(const SkeletonFault& f, const SkeletonKeys& keys) {
  using P = SkeletonProblem;
  const std::string name = quote(f.name);
  const std::string detail(f.detail);
  switch (f.problem) {
    case P::text_too_deep:
    case P::group_too_deep: return "groups nested deeper than " + std::to_string(keys.max_depth) + " levels";
    case P::text_has_nul: return "not valid JSON: " + detail;
    case P::text_not_json: return "not valid JSON (" + detail + ")";
    case P::too_many_values: return "more than " + std::to_string(f.number) + " JSON values";
    case P::duplicate_key: return "duplicate key " + name;
    case P::not_an_object:
    case P::wrong_format: return "expected an object with \"format\": \"" + std::string(keys.format) + "\"";
    case P::unknown_top_key: return "unknown key " + name;
    case P::version_not_integer: return "\"version\" must be an integer";
    case P::version_unknown:
      return "layout version " + detail + " is not understood by this reader (it reads " + std::to_string(keys.version) + ")";
    case P::no_root: return "no \"root\" group";
    case P::group_not_object: return "a group must be a JSON object";
    case P::unknown_group_key: return "unknown key " + name + " in a group";
    case P::list_missing: return "a group without " + name;
    case P::list_not_array: return name + " must be an array";
    case P::child_not_object: return "a child must be a JSON object";
    case P::child_not_pair: return "a child must be [name, object]";
    case P::child_kind: return "a child has exactly one of \"tensor\" and \"group\"";
    case P::unknown_tensor_key: return "unknown key " + name + " in a tensor";
    case P::not_text:
      return std::string(text_kind(f.detail)) + (keys.utf8_only ? " must be a string" : " must be a string or {\"hex\": ...}");
    case P::bad_name: return std::string(text_kind(f.detail)) + " " + name + " is empty or holds '/' or NUL";
    case P::attribute_not_triple: return "an attribute must be [name, type, value]";
    case P::unknown_type: return "unknown attribute type " + name;
    case P::wrong_value:
      if (f.name == "bool") return f.element ? "a bool[] holds only true and false" : "expected true or false";
      if (f.name == "int64") return "expected an integer, found " + detail;
      if (keys.named_floats)
        return "a float64 must be a number, \"NaN\", \"NaN:0x<16 hex digits of a NaN>\", \"Infinity\" or \"-Infinity\"";
      return "a float64 must be a number, \"<16 hex digits>\" or {\"bits\": \"<16 hex digits>\"}";
    case P::int_out_of_range: return "integer " + detail + " does not fit in int64";
    case P::not_an_array: return "a " + std::string(f.name) + " value must be an array";
    case P::too_costly:
      return "the document costs more than " + std::to_string(f.number) + " bytes to hold (option max_document_bytes)";
    case P::duplicate_child: return "duplicate child " + name;
    case P::duplicate_attribute: return "duplicate attribute " + name;
    case P::bad_dtype: return "\"dtype\" must name a dtype (f32, f64, f16, bf16, i8, u8, i16, i32, i64, bool, ...)";
    case P::bad_shape: return "\"shape\" must be an array";
    case P::negative_dimension: return "negative dimension " + std::to_string(f.number);
    case P::no_location: return "a tensor names its " + name;
  }
  return "not the layout of the document";
}

void read_skeleton(std::string_view text, const SkeletonKeys& keys, const SkeletonSource& source, SkeletonSink& sink) {
  SkeletonReader(keys, source, sink).read(text);
}

Tree read_skeleton(std::string_view text, const SkeletonKeys& keys, const SkeletonSource& source,
                   const OnSkeletonTensor& on_tensor) {
  Tree tree(true);
  const SkeletonReader* faults = nullptr;  // the sink's duplicates are reported as the reader reports
  TreeSink sink(tree, on_tensor, [&](const SkeletonFault& f) { faults->fault(f); });
  SkeletonReader reader(keys, source, sink);
  faults = &reader;
  reader.read(text);
  return tree;
}

}  // namespace ckpt::sdk
