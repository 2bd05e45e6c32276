#include "user_layout.hpp"

#include "py_text.hpp"
#include "skeleton.hpp"

#include <ckpt/sdk.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <cstdio>
#include <map>
#include <tuple>
#include <unordered_set>

namespace ckpt_pytorch {

using namespace ckpt_pickle;
using ckpt::sdk::fail;
using json = nlohmann::json;

namespace {

constexpr const char* kFormat = "ckpt-torch-layout";
constexpr int64_t kVersion = 1;

// Objects whose class the writer may name in a pickle: torch.load instantiates it (without
// calling __init__) and sets its attributes. Any other class could run code when loaded
// (__setstate__), so a document, which anyone can write, never makes ckpt emit one.
bool writable_class(std::string_view cls) { return cls == "argparse.Namespace" || cls == "types.SimpleNamespace"; }

// NumPy scalars by the dtype spec numpy pickles them with.
constexpr std::pair<const char*, uint32_t> kNumpySpecs[] = {
    {"f8", CKPT_DTYPE_F64}, {"f4", CKPT_DTYPE_F32}, {"f2", CKPT_DTYPE_F16}, {"i1", CKPT_DTYPE_I8}, {"u1", CKPT_DTYPE_U8},
    {"i2", CKPT_DTYPE_I16}, {"i4", CKPT_DTYPE_I32}, {"i8", CKPT_DTYPE_I64}, {"b1", CKPT_DTYPE_BOOL},
    {"u2", CKPT_DTYPE_U16}, {"u4", CKPT_DTYPE_U32}, {"u8", CKPT_DTYPE_U64}, {"c8", CKPT_DTYPE_C64}, {"c16", CKPT_DTYPE_C128}};

const char* numpy_spec(uint32_t dtype) {
  for (const auto& [spec, d] : kNumpySpecs)
    if (d == dtype) return spec;
  return nullptr;
}

// Why a layout gives up, and where in the object: the reader records it (meta/@torch_layout_lost)
// so that a writer into .pt names the loss instead of laying the document out by the schema
// in silence.
struct NotDescribable {
  std::string why;
};

// A dict key as Python prints it, short: ['cfg'], [3], [(1, 2)].
std::string key_repr(const Obj* k) {
  std::string name = DocBuilder::key_name(k);
  if (name.size() > 64) name = name.substr(0, 61) + "...";
  return k->kind == Kind::string ? "['" + name + "']" : "[" + name + "]";
}

class Describer {
 public:
  Describer(DocPaths paths, const std::function<std::vector<std::byte>(const Array&)>& bytes, uint64_t max_bytes)
      : paths_(std::move(paths)), bytes_(bytes), left_(max_bytes), max_bytes_(max_bytes) {}

  json leaf(const Obj* o, int depth) {
    if (depth > kMaxDepth) refuse("containers nested deeper than " + std::to_string(kMaxDepth) + " levels");
    spend(16);
    switch (o->kind) {
      case Kind::none: return nullptr;
      case Kind::boolean: return static_cast<const Scalar*>(o)->b;
      case Kind::integer: return static_cast<const Scalar*>(o)->i;
      case Kind::floating: {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(std::bit_cast<uint64_t>(static_cast<const Scalar*>(o)->f)));
        return json{{"f", buf}};
      }
      case Kind::string: {
        const std::string_view s = static_cast<const Text*>(o)->str();
        spend(2 * s.size());
        // A document string stands for one Python str only when it comes back as the same one
        // (lone surrogates that spell valid UTF-8 would come back as other characters).
        if (ckpt_pickle::to_python_str(ckpt_pickle::from_python_str(s)) != s)
          refuse("a str whose lone surrogates would come back as other characters");
        if (ckpt::sdk::valid_utf8(s)) return std::string(s);
        return json{{"s", ckpt::sdk::to_hex(s)}};
      }
      case Kind::bytes: {
        const std::string_view s = static_cast<const Text*>(o)->str();
        spend(2 * s.size());
        return json{{"b", ckpt::sdk::to_hex(s)}};
      }
      case Kind::list:
      case Kind::tuple: {
        const auto* s = static_cast<const Seq*>(o);
        json items = json::array();
        for (size_t i = 0; i < s->items.size(); ++i) {
          const Obj* x = s->items[i];
          const Place here(this, s->is_set ? "{item " + std::to_string(i) + "}" : "[" + std::to_string(i) + "]");
          if (s->is_set) hashable(x);
          items.push_back(leaf(x, depth + 1));
        }
        return json{{s->kind == Kind::tuple ? "t" : s->is_set ? "e" : "l", std::move(items)}};
      }
      case Kind::dict: {
        const auto* d = static_cast<const Dict*>(o);
        if (d->instance_state && (!d->ordered || !torch_metadata(d->instance_state)))
          refuse(std::string(d->ordered ? "an OrderedDict" : "a dict") + " with a state other than the _metadata torch's state_dict() sets");
        json entries = json::array();
        // Each key must name its own member of the document: keys whose names collide (1 and
        // "1"), or a "__class__" key (an object's class in the document) would let the layout
        // choose what torch reads under a name ckpt shows.
        std::unordered_set<std::string> names;
        for (const auto& [k, v] : d->entries) {
          const Place here(this, key_repr(k));
          hashable(k);
          const std::string name = DocBuilder::key_name(k);
          if (!names.insert(name).second) refuse("a key whose name in the document ('" + name + "') an earlier key has too");
          if (name == "__class__") refuse("a key '__class__', the name under which the document gives an object's class");
          entries.push_back(json::array({leaf(k, depth + 1), leaf(v, depth + 1)}));
        }
        json out{{d->counter ? "c" : d->ordered ? "o" : "d", std::move(entries)}};
        if (d->instance_state) {
          const Place here(this, ".__dict__");  // what BUILD set: od.__dict__["_metadata"]
          out["state"] = leaf(d->instance_state, depth + 1);
        }
        return out;
      }
      case Kind::record: {
        const auto* r = static_cast<const Record*>(o);
        const std::string cls = r->cls.size() > 200 ? r->cls.substr(0, 200) + "..." : r->cls;
        if (r->called) refuse("a call of " + cls + ", which ckpt did not make and does not write back");
        if (!writable_class(r->cls))
          refuse("an object of class " + cls + ", which ckpt does not write back (torch.load would instantiate "
                 "whatever class a document names; only argparse.Namespace and types.SimpleNamespace are written)");
        if (r->args || r->state) refuse("an object of class " + cls + " built with arguments or a state other than its attributes");
        json attrs = json::array();
        for (const auto& [k, v] : r->attributes) {
          const Place here(this, "." + (k.size() > 64 ? k.substr(0, 64) + "..." : k));
          if (!ckpt::sdk::valid_utf8(k) || k == "__class__" || k == "__args__" || k == "__state__")
            refuse("an attribute whose name the document reserves or cannot hold");
          attrs.push_back(json::array({k, leaf(v, depth + 1)}));
        }
        return json{{"R", r->cls}, {"a", std::move(attrs)}};
      }
      case Kind::array: return array(*static_cast<const Array*>(o));
      case Kind::global: refuse("the global " + static_cast<const Global*>(o)->full().substr(0, 200) + " (a class or function), which ckpt does not write back");
      case Kind::storage: refuse("a bare torch storage, not a tensor");
      case Kind::dtype: refuse("a numpy.dtype");
      default: refuse(std::string("a ") + kind_name(o->kind));
    }
  }

  // Where the walk is, for the reason it gives up: pushed for the walk of a member.
  class Place {
   public:
    Place(Describer* d, std::string step) : d_(d) { d_->where_.push_back(std::move(step)); }
    ~Place() { d_->where_.pop_back(); }
    Place(const Place&) = delete;
    Place& operator=(const Place&) = delete;

   private:
    Describer* d_;
  };

  [[noreturn]] void refuse(const std::string& what) const {
    std::string at;
    for (const std::string& s : where_) at += s;
    throw NotDescribable{(at.empty() ? std::string("the object itself") : at) + ": " + what};
  }

 private:
  // What Python can use as a dict key or set member here: no object of ours defines a hash.
  void hashable(const Obj* o) const {
    if (o->kind == Kind::record || o->kind == Kind::list || o->kind == Kind::dict || o->kind == Kind::array)
      refuse(std::string("a key or set member of a type Python cannot hash (") + kind_name(o->kind) + ")");
    if (o->kind == Kind::tuple)
      for (const Obj* x : static_cast<const Seq*>(o)->items) hashable(x);
  }

  // The state torch's state_dict() gives its OrderedDict: {"_metadata": OrderedDict of module
  // prefix -> {"version": int}} and nothing else, since the document does not show it.
  static bool torch_metadata(const Obj* state) {
    const Dict* d = as_dict(state);
    if (!d || d->ordered || d->entries.size() != 1) return false;
    const Text* key = as_text(d->entries[0].first);
    const Dict* m = as_dict(d->entries[0].second);
    if (!key || key->kind != Kind::string || key->str() != "_metadata" || !m || !m->ordered || m->instance_state) return false;
    for (const auto& [prefix, versions] : m->entries) {
      const Dict* v = as_dict(versions);
      if (prefix->kind != Kind::string || !v || v->ordered || v->instance_state) return false;
      for (const auto& [name, version] : v->entries)
        if (name->kind != Kind::string || (version->kind != Kind::integer && version->kind != Kind::none)) return false;
    }
    return true;
  }

  void spend(uint64_t n) {
    if (n > left_) refuse("the layout would take more than " + std::to_string(max_bytes_) + " bytes (reader option max_document_bytes)");
    left_ -= n;
  }

  json array(const Array& a) {
    if (a.numpy) {
      const char* spec = numpy_spec(a.dtype);
      const char* what = a.scalar ? "NumPy scalar" : "NumPy array";
      if (!a.raw_spec.empty())
        refuse(std::string("a ") + what + " of dtype '" + a.raw_spec.substr(0, 64) + "'" +
               (a.raw_fields.empty() ? "" : " (structured)") + ", which ckpt holds as raw bytes and does not write back");
      if (!spec) refuse(std::string("a ") + what + " of dtype " + ckpt::sdk::dtype_name(a.dtype) + ", which NumPy does not have");
      if (!a.scalar) {
        // A NumPy array: the document tensor that holds its values, written back as a C-order
        // little-endian array of its dtype (what NumPy compares equal, dtype included).
        if (a.big_endian) refuse(std::string("a big-endian NumPy array (dtype '>") + spec + "'), which ckpt holds little-endian");
        const std::string* mine = next_path(a);
        if (!mine) refuse("a NumPy array the document holds no tensor for");
        return json{{"A", *mine}, {"np", spec}};
      }
      // A NumPy scalar as numpy pickles it.
      const Text* t = as_text(a.base);
      if (!t) refuse("a NumPy scalar without bytes");
      if (a.big_endian && t->str().size() > 1) refuse(std::string("a big-endian NumPy scalar (dtype '>") + spec + "')");
      return json{{"N", spec}, {"x", ckpt::sdk::to_hex(t->str())}};
    }
    const Storage* s = as_storage(a.base);
    json out;
    const std::string* mine = s ? next_path(a) : nullptr;
    if (mine) {
      out["T"] = *mine;
      // Tensors that view the same bytes the same way are one tensor to torch (tied weights):
      // each after the first names the first.
      auto key = std::make_tuple(s->key, a.offset, a.shape, a.strides, a.dtype);
      auto [it, first] = shares_.emplace(std::move(key), *mine);
      if (!first) out["same"] = it->second;
    } else {
      // A tensor the mapping read as a number (a loss, Adam's step): kept by value.
      uint64_t n = 1;
      for (int64_t d : a.shape) n *= static_cast<uint64_t>(d);
      if (n > 1 || a.shape.size() > 8)
        refuse("a tensor of " + std::to_string(n) + " elements the document holds no tensor for (a view of bytes the "
               "document does not hold)");
      const std::vector<std::byte> b = bytes_(a);
      out["V"] = ckpt::sdk::to_hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
      out["dtype"] = ckpt::sdk::dtype_name(a.dtype);
      out["shape"] = a.shape;
    }
    // torch.load refuses requires_grad on a tensor that is neither floating point nor complex.
    const bool floating = a.dtype == CKPT_DTYPE_F32 || a.dtype == CKPT_DTYPE_F64 || a.dtype == CKPT_DTYPE_F16 ||
                          a.dtype == CKPT_DTYPE_BF16 || a.dtype == CKPT_DTYPE_F8_E4M3FN || a.dtype == CKPT_DTYPE_F8_E5M2 ||
                          a.dtype == CKPT_DTYPE_C64 || a.dtype == CKPT_DTYPE_C128;
    if ((a.requires_grad || a.parameter) && !floating)
      refuse(std::string(a.parameter ? "an nn.Parameter" : "requires_grad") + " on a tensor of dtype " + ckpt::sdk::dtype_name(a.dtype) +
             ", which torch.load refuses");
    if (a.requires_grad) out["grad"] = true;
    if (a.parameter) out["param"] = true;
    return out;
  }

  // The document path of this occurrence of `a` (the pickle's memo may repeat an array), or
  // nullptr when the mapping made none. A cursor per array: erasing from the front was
  // quadratic in an array's occurrences.
  const std::string* next_path(const Array& a) {
    auto it = paths_.find(&a);
    if (it == paths_.end()) return nullptr;
    size_t& k = next_[&a];
    return k < it->second.size() ? &it->second[k++] : nullptr;
  }

  DocPaths paths_;
  std::unordered_map<const Array*, size_t> next_;
  const std::function<std::vector<std::byte>(const Array&)>& bytes_;
  std::map<std::tuple<std::string, int64_t, std::vector<int64_t>, std::vector<int64_t>, uint32_t>, std::string> shares_;
  uint64_t left_;
  uint64_t max_bytes_;
  std::vector<std::string> where_;
};

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  fail(CKPT_ERR_FORMAT, source + ": " + what);
}

std::string unhex(const json& j, const std::string& source) {
  auto out = j.is_string() ? ckpt::sdk::from_hex(j.get_ref<const std::string&>()) : std::nullopt;
  if (!out) bad(source, "expected hex digits");
  return *out;
}

const json& member(const json& j, const char* key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end()) bad(source, std::string("no \"") + key + "\"");
  return *it;
}

}  // namespace

std::optional<std::string> describe_layout(const Obj* root, DocPaths paths,
                                           const std::function<std::vector<std::byte>(const Array&)>& bytes,
                                           uint64_t max_bytes, std::string* why) {
  try {
    Describer d(std::move(paths), bytes, max_bytes);
    json doc{{"format", kFormat}, {"version", kVersion}, {"root", d.leaf(root, 0)}};
    return doc.dump();
  } catch (const NotDescribable& e) {
    if (why) *why = e.why;
    return std::nullopt;
  }
}

DocPaths doc_paths(const Node& mapped, const std::vector<const Array*>& arrays) {
  DocPaths out;
  std::function<void(const Node&, const std::string&)> walk = [&](const Node& g, const std::string& prefix) {
    for (const Node& c : g.children) {
      const std::string p = prefix.empty() ? c.name : prefix + "/" + c.name;
      if (c.is_group) walk(c, p);
      else out[arrays.at(c.tensor_id)].push_back(p);
    }
  };
  walk(mapped, "");
  return out;
}

// ---- following a layout ------------------------------------------------------------------

struct UserLayout::Parsed {
  json doc;
};

UserLayout::~UserLayout() = default;
UserLayout::UserLayout(UserLayout&&) noexcept = default;
UserLayout& UserLayout::operator=(UserLayout&&) noexcept = default;

UserLayout::UserLayout(const std::string& text, const std::string& source) : parsed_(std::make_unique<Parsed>()), source_(source) {
  if (ckpt::sdk::json_nesting(text) > kMaxDepth) fail(CKPT_ERR_LIMIT, source + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
  if (auto nul = ckpt::sdk::json_nul_problem(text); !nul.empty()) bad(source, "not valid JSON: " + nul);
  parsed_->doc = json::parse(text, nullptr, false);
  const json& doc = parsed_->doc;
  if (doc.is_discarded() || !doc.is_object() || doc.value("format", "") != kFormat) bad(source, "not a ckpt-torch-layout");
  const json& v = member(doc, "version", source);
  if (!v.is_number_integer() || v.get<int64_t>() > kVersion)
    fail(CKPT_ERR_UNSUPPORTED, source + ": a layout version newer than " + std::to_string(kVersion));
  member(doc, "root", source);
  // Ties: a tensor that names another it is the same as.
  std::function<void(const json&)> walk = [&](const json& j) {
    if (j.is_array()) {
      for (const json& x : j) walk(x);
    } else if (j.is_object()) {
      if (auto t = j.find("T"); t != j.end() && t->is_string()) {
        if (auto s = j.find("same"); s != j.end()) {
          if (!s->is_string()) bad(source, "a tensor whose \"same\" is not a path");
          ties_.emplace(t->get<std::string>(), s->get<std::string>());
          leaders_.insert(s->get<std::string>());
        }
        return;
      }
      for (const char* k : {"l", "t", "e", "d", "o", "c", "state", "a"})
        if (auto it = j.find(k); it != j.end()) walk(*it);
    }
  };
  walk(doc["root"]);
}

Obj* UserLayout::build(Arena& arena, const std::function<Array*(const std::string&)>& tensor) const {
  std::function<Obj*(const json&)> make = [&](const json& j) -> Obj* {
    if (j.is_null()) return arena.none();
    if (j.is_boolean()) return arena.boolean(j.get<bool>());
    if (j.is_number_integer()) {
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) bad(source_, "an integer beyond int64");
      return arena.integer(j.get<int64_t>());
    }
    if (j.is_string()) {
      auto* t = arena.make<Text>(Kind::string);
      t->owned = j.get<std::string>();
      return t;
    }
    if (j.is_array() || !j.is_object() || j.size() == 0) bad(source_, "a value that is not a layout node");
    const std::string kind = j.begin().key();
    if (j.contains("f")) {
      const std::string b = unhex(j["f"], source_);
      if (b.size() != 8) bad(source_, "a float that is not 8 bytes");
      uint64_t u = 0;
      for (unsigned char c : b) u = (u << 8) | c;
      return arena.floating(std::bit_cast<double>(u));
    }
    if (j.contains("s") || j.contains("b")) {
      auto* t = arena.make<Text>(j.contains("s") ? Kind::string : Kind::bytes);
      t->owned = unhex(j.contains("s") ? j["s"] : j["b"], source_);
      return t;
    }
    for (const char* k : {"l", "t", "e"}) {
      if (!j.contains(k)) continue;
      const json& items = j[k];
      if (!items.is_array()) bad(source_, "a list that is not an array");
      auto* s = arena.make<Seq>(k[0] == 't' ? Kind::tuple : Kind::list);
      s->is_set = k[0] == 'e';
      for (const json& x : items) {
        if (s->is_set) s->add(make(x));
        else s->items.push_back(make(x));
      }
      return s;
    }
    for (const char* k : {"d", "o", "c"}) {
      if (!j.contains(k)) continue;
      const json& entries = j[k];
      if (!entries.is_array()) bad(source_, "a dict that is not an array of pairs");
      auto* d = arena.make<Dict>();
      d->ordered = k[0] == 'o';
      d->counter = k[0] == 'c';
      for (const json& e : entries) {
        if (!e.is_array() || e.size() != 2) bad(source_, "a dict entry that is not a pair");
        d->put(make(e[0]), make(e[1]));
      }
      if (j.contains("state")) {
        if (!d->ordered) bad(source_, "a state on a dict other than an OrderedDict");
        d->instance_state = make(j["state"]);
      }
      return d;
    }
    if (j.contains("R")) {
      const json& cls = j["R"];
      if (!cls.is_string() || !writable_class(cls.get<std::string>()))
        fail(CKPT_ERR_UNSUPPORTED, source_ + ": an object of class " + cls.dump() + ", which ckpt does not write into a pickle");
      auto* r = arena.make<Record>(cls.get<std::string>());
      const json& attrs = member(j, "a", source_);
      if (!attrs.is_array()) bad(source_, "attributes that are not an array");
      for (const json& a : attrs) {
        if (!a.is_array() || a.size() != 2 || !a[0].is_string()) bad(source_, "an attribute that is not [name, value]");
        r->set(a[0].get<std::string>(), make(a[1]));
      }
      return r;
    }
    if (j.contains("N")) {
      const json& spec = j["N"];
      uint32_t dtype = 0;
      for (const auto& [s, d] : kNumpySpecs)
        if (spec.is_string() && spec.get<std::string>() == s) dtype = d;
      if (!dtype) bad(source_, "a NumPy scalar of dtype " + spec.dump());
      auto* t = arena.make<Text>(Kind::bytes);
      t->owned = unhex(member(j, "x", source_), source_);
      if (t->owned.size() != ckpt::sdk::dtype_size(dtype)) bad(source_, "a NumPy scalar whose bytes do not fit its dtype");
      auto* a = arena.make<Array>();
      a->dtype = dtype;
      a->base = t;
      a->numpy = a->scalar = true;
      return a;
    }
    Array* a = nullptr;
    if (j.contains("A")) {
      const json& p = j["A"];
      const json& spec = member(j, "np", source_);
      if (!p.is_string()) bad(source_, "a NumPy array's path that is not a string");
      a = tensor(p.get<std::string>());
      if (!spec.is_string() || !numpy_spec(a->dtype) || spec.get<std::string>() != numpy_spec(a->dtype))
        bad(source_, "a NumPy array of dtype " + spec.dump() + " over a " + ckpt::sdk::dtype_name(a->dtype) + " tensor");
      a->numpy = true;
      return a;
    }
    if (j.contains("T")) {
      const json& p = j["T"];
      if (!p.is_string()) bad(source_, "a tensor path that is not a string");
      a = tensor(p.get<std::string>());
    } else if (j.contains("V")) {
      a = arena.make<Array>();
      const json& dt = member(j, "dtype", source_);
      a->dtype = dt.is_string() ? ckpt::sdk::dtype_from_name(dt.get<std::string>()) : 0;
      if (!a->dtype) bad(source_, "a tensor value of dtype " + dt.dump());
      const json& shape = member(j, "shape", source_);
      if (!shape.is_array() || shape.size() > 8) bad(source_, "a tensor value's shape is not an array of at most 8 sizes");
      uint64_t n = 1;
      for (const json& d : shape) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > 1) bad(source_, "a tensor value of more than one element");
        a->shape.push_back(d.get<int64_t>());
        n *= static_cast<uint64_t>(d.get<int64_t>());
      }
      a->strides.assign(a->shape.size(), 1);
      auto* t = arena.make<Text>(Kind::bytes);
      t->owned = unhex(j["V"], source_);
      if (t->owned.size() != n * ckpt::sdk::dtype_size(a->dtype)) bad(source_, "a tensor value whose bytes do not fit its shape");
      a->base = t;
    } else {
      bad(source_, "an unknown layout node \"" + kind + "\"");
    }
    if (auto g = j.find("grad"); g != j.end()) a->requires_grad = g->is_boolean() && g->get<bool>();
    if (auto p = j.find("param"); p != j.end()) a->parameter = p->is_boolean() && p->get<bool>();
    return a;
  };
  return make(parsed_->doc["root"]);
}

// ---- writing the object ------------------------------------------------------------------

PyOut to_pyout(const Obj* o, const std::function<std::string(const Array&)>& storage,
               const std::function<std::string(const Array&)>& numpy_bytes) {
  using T = PyOut::T;
  switch (o->kind) {
    case Kind::none: return PyOut();
    case Kind::boolean: return PyOut::boolean(static_cast<const Scalar*>(o)->b);
    case Kind::integer: return PyOut::integer(static_cast<const Scalar*>(o)->i);
    case Kind::floating: return PyOut::floating(static_cast<const Scalar*>(o)->f);
    case Kind::string: {
      PyOut s = PyOut::str(std::string(static_cast<const Text*>(o)->str()));
      s.raw = true;
      return s;
    }
    case Kind::bytes: {
      PyOut b = PyOut::container(T::bytes);
      b.s = std::string(static_cast<const Text*>(o)->str());
      return b;
    }
    case Kind::list:
    case Kind::tuple: {
      const auto* s = static_cast<const Seq*>(o);
      PyOut out = PyOut::container(s->kind == Kind::tuple ? T::tuple : s->is_set ? T::set : T::list);
      for (const Obj* x : s->items) out.items.push_back(to_pyout(x, storage, numpy_bytes));
      return out;
    }
    case Kind::dict: {
      const auto* d = static_cast<const Dict*>(o);
      PyOut out = PyOut::container(d->counter ? T::counter : d->ordered ? T::odict : T::dict);
      for (const auto& [k, v] : d->entries) out.entries.emplace_back(to_pyout(k, storage, numpy_bytes), to_pyout(v, storage, numpy_bytes));
      if (d->instance_state) out.items.push_back(to_pyout(d->instance_state, storage, numpy_bytes));
      return out;
    }
    case Kind::record: {
      const auto* r = static_cast<const Record*>(o);
      PyOut out = PyOut::container(T::record);
      out.s = r->cls;
      for (const auto& [k, v] : r->attributes) {
        PyOut name = PyOut::str(k);
        name.raw = true;
        out.entries.emplace_back(std::move(name), to_pyout(v, storage, numpy_bytes));
      }
      return out;
    }
    case Kind::array: {
      const auto* a = static_cast<const Array*>(o);
      if (a->numpy) {
        PyOut out = PyOut::container(a->scalar ? T::numpy_scalar : T::numpy_array);
        out.spec = numpy_spec(a->dtype);
        out.dtype = a->dtype;
        out.shape = a->shape;
        out.s = a->scalar ? std::string(as_text(a->base)->str()) : numpy_bytes(*a);
        return out;
      }
      PyOut t = PyOut::tensor(storage(*a), a->dtype, a->shape);
      t.requires_grad = a->requires_grad;
      t.parameter = a->parameter;
      return t;
    }
    default: fail(CKPT_ERR_INTERNAL, std::string("a layout built a ") + kind_name(o->kind));
  }
}

// ---- comparing views ---------------------------------------------------------------------

namespace {

class ViewComparison {
 public:
  ViewComparison(const std::function<bool(uint64_t, uint64_t)>& same_tensor, const std::string& source)
      : same_tensor_(same_tensor), source_(source) {}

  // `subset`: ckpt's meta group, which may hold more than the pickle gives. At the root, meta
  // is matched by name wherever it stands (ckpt's own records may be there and not in the
  // pickle); every other member in order.
  void group(const Node& m, const Node& v, const std::string& path, bool subset) {
    if (!subset && m.attributes.size() != v.attributes.size())
      differ(path, std::to_string(v.attributes.size()) + " attributes against " + std::to_string(m.attributes.size()));
    for (size_t i = 0; i < m.attributes.size(); ++i) {
      const auto& [name, value] = m.attributes[i];
      const Value* other = subset ? v.attribute(name) : (v.attributes[i].first == name ? &v.attributes[i].second : nullptr);
      if (!other || !same_value(value, *other)) differ(path + "@" + name, "a different value, or none");
    }
    const bool root = path.empty() && !subset;
    auto skipped = [&](const Node& c) { return root && c.name == "meta"; };
    size_t k = 0;
    for (const Node& c : m.children) {
      const std::string p = path.empty() ? c.name : path + "/" + c.name;
      const Node* o = nullptr;
      if (subset || skipped(c)) {
        o = v.child(c.name);
      } else {
        while (k < v.children.size() && skipped(v.children[k])) ++k;
        if (k < v.children.size()) o = &v.children[k++];
      }
      if (!o || o->name != c.name || o->is_group != c.is_group) differ(p, "a member the document does not hold there");
      if (c.is_group) group(c, *o, p, subset || skipped(c));
      else if (!same_tensor_(c.tensor_id, o->tensor_id)) differ(p, "another tensor");
    }
    if (subset) return;
    while (k < v.children.size() && skipped(v.children[k])) ++k;
    if (k != v.children.size()) differ(path.empty() ? v.children[k].name : path + "/" + v.children[k].name, "a member the pickle does not hold");
  }

 private:
  [[noreturn]] void differ(const std::string& where, const std::string& what) const {
    fail(CKPT_ERR_FORMAT, source_ + " does not describe the document at " + (where.empty() ? "the root" : where) + ": " + what +
                              " (torch.load would read something other than ckpt does)");
  }
  const std::function<bool(uint64_t, uint64_t)>& same_tensor_;
  const std::string& source_;
};

}  // namespace

void check_same_view(const Node& mapped, const Node& view, const std::function<bool(uint64_t, uint64_t)>& same_tensor,
                     const std::string& source) {
  ViewComparison(same_tensor, source).group(mapped, view, "", false);
}

}  // namespace ckpt_pytorch
