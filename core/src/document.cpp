#include <ckpt/document.hpp>
#include <ckpt/errors.hpp>

#include <bit>
#include <charconv>
#include <cstring>

namespace ckpt {

std::string_view value_type_name(ValueType t) {
  static const char* names[] = {"bool",    "int64",    "float64",    "string",
                                "bool[]", "int64[]", "float64[]", "string[]"};
  return names[static_cast<int>(t)];
}

bool is_array(ValueType t) { return static_cast<int>(t) >= static_cast<int>(ValueType::bool_array); }

namespace {
std::string fmt_double(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
      continue;
    }
    out += c;
  }
  return out + "\"";
}
template <class T, class F>
std::string list(const std::vector<T>& v, size_t max, F f) {
  std::string s = "[";
  for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? ", " : "") + f(v[i]);
  if (v.size() > max) s += ", ... (" + std::to_string(v.size()) + " items)";
  return s + "]";
}
}  // namespace

namespace {
// A long text (a format's layout, a model's source, a tokenizer's JSON) by its start and size.
std::string shown(const std::string& text, size_t max) {
  const size_t keep = 8 * std::max<size_t>(max, 1);
  if (text.size() <= keep) return quote(text);
  size_t cut = keep;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;  // not inside a UTF-8 character
  return quote(text.substr(0, cut)) + "... (" + std::to_string(text.size()) + " bytes)";
}
}  // namespace

std::string value_to_string(const Value& v, size_t max) {
  switch (value_type(v)) {
    case ValueType::boolean: return std::get<bool>(v) ? "true" : "false";
    case ValueType::int64: return std::to_string(std::get<int64_t>(v));
    case ValueType::float64: return fmt_double(std::get<double>(v));
    case ValueType::string: return shown(std::get<std::string>(v), max);
    case ValueType::bool_array:
      return list(std::get<std::vector<bool>>(v), max, [](bool b) { return std::string(b ? "true" : "false"); });
    case ValueType::int64_array:
      return list(std::get<std::vector<int64_t>>(v), max, [](int64_t i) { return std::to_string(i); });
    case ValueType::float64_array:
      return list(std::get<std::vector<double>>(v), max, fmt_double);
    case ValueType::string_array:
      return list(std::get<std::vector<std::string>>(v), max, [max](const std::string& s) { return shown(s, max); });
  }
  return "?";
}

bool value_equal(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (auto* da = std::get_if<double>(&a))
    return std::bit_cast<uint64_t>(*da) == std::bit_cast<uint64_t>(std::get<double>(b));
  if (auto* va = std::get_if<std::vector<double>>(&a)) {
    auto& vb = std::get<std::vector<double>>(b);
    return va->size() == vb.size() &&
           (va->empty() || std::memcmp(va->data(), vb.data(), va->size() * sizeof(double)) == 0);
  }
  return a == b;
}

void check_name(std::string_view name) {
  if (name.empty()) throw UsageError("empty name in document");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    throw UsageError("name '" + std::string(name) + "' holds '/' or NUL, which paths reserve");
}

std::string join_path(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  return std::string(a) + "/" + std::string(b);
}

Group::Group(const Group& o) : attributes_(o.attributes_), attribute_at_(o.attribute_at_), child_at_(o.child_at_) {
  children_.reserve(o.children_.size());
  for (const auto& c : o.children_) {
    if (c.is_tensor())
      children_.push_back(Node{c.name, c.tensor()});
    else
      children_.push_back(Node{c.name, std::make_unique<Group>(c.group())});
  }
}

Group& Group::operator=(const Group& o) {
  if (this != &o) *this = Group(o);
  return *this;
}

std::optional<size_t> Group::child_position(std::string_view name) const {
  return child_at_.find(name, [this](size_t i) -> std::string_view { return children_[i].name; });
}

std::optional<size_t> Group::attribute_position(std::string_view name) const {
  return attribute_at_.find(name, [this](size_t i) -> std::string_view { return attributes_[i].name; });
}

Group& Group::set(std::string_view name, Value value) {
  if (auto at = attribute_position(name)) {
    attributes_[*at].value = std::move(value);
    return *this;
  }
  check_name(name);
  attributes_.push_back({std::string(name), std::move(value)});
  attribute_at_.insert(attributes_.size() - 1, [this](size_t i) -> std::string_view { return attributes_[i].name; });
  return *this;
}

const Value* Group::attribute(std::string_view name) const {
  auto at = attribute_position(name);
  return at ? &attributes_[*at].value : nullptr;
}

bool Group::erase_attribute(std::string_view name) {
  auto at = attribute_position(name);
  if (!at) return false;
  attributes_.erase(attributes_.begin() + static_cast<std::ptrdiff_t>(*at));
  attribute_at_.rebuild(attributes_.size(), [this](size_t i) -> std::string_view { return attributes_[i].name; });
  return true;
}

const Node* Group::find(std::string_view name) const {
  auto at = child_position(name);
  return at ? &children_[*at] : nullptr;
}

Tensor& Group::add_tensor(std::string_view name, Tensor t) {
  check_name(name);
  // Appended, then indexed: one probe finds a clash and records the name.
  children_.push_back(Node{std::string(name), std::move(t)});
  if (!child_at_.insert(children_.size() - 1, [this](size_t i) -> std::string_view { return children_[i].name; })) {
    children_.pop_back();
    throw UsageError("duplicate child name '" + std::string(name) + "'");
  }
  return children_.back().tensor();
}

Tensor& Group::set_tensor(std::string_view name, Tensor t) {
  if (auto at = child_position(name)) {
    Node& c = children_[*at];
    c.item = std::move(t);
    return c.tensor();
  }
  return add_tensor(name, std::move(t));
}

Group& Group::add_group(std::string_view name) {
  check_name(name);
  children_.push_back(Node{std::string(name), std::make_unique<Group>()});
  if (!child_at_.insert(children_.size() - 1, [this](size_t i) -> std::string_view { return children_[i].name; })) {
    children_.pop_back();
    throw UsageError("duplicate child name '" + std::string(name) + "'");
  }
  return children_.back().group();
}

Group& Group::group(std::string_view name) {
  if (auto at = child_position(name)) {
    Node& c = children_[*at];
    if (!c.is_group()) throw UsageError("'" + std::string(name) + "' is a tensor, not a group");
    return c.group();
  }
  return add_group(name);
}

const Group* Group::find_group(std::string_view name) const {
  const Node* n = find(name);
  return n && n->is_group() ? &n->group() : nullptr;
}
Group* Group::find_group(std::string_view name) {
  return const_cast<Group*>(static_cast<const Group*>(this)->find_group(name));
}
const Tensor* Group::find_tensor(std::string_view name) const {
  const Node* n = find(name);
  return n && n->is_tensor() ? &n->tensor() : nullptr;
}
Tensor* Group::find_tensor(std::string_view name) {
  return const_cast<Tensor*>(static_cast<const Group*>(this)->find_tensor(name));
}

bool Group::erase(std::string_view name) {
  auto at = child_position(name);
  if (!at) return false;
  children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(*at));
  child_at_.rebuild(children_.size(), [this](size_t i) -> std::string_view { return children_[i].name; });
  return true;
}

const Group* Group::find_group_path(std::string_view path) const {
  const Group* g = this;
  while (g && !path.empty()) {
    size_t slash = path.find('/');
    g = g->find_group(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return g;
}

const Tensor* Group::find_tensor_path(std::string_view path) const {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return find_tensor(path);
  const Group* g = find_group_path(path.substr(0, slash));
  return g ? g->find_tensor(path.substr(slash + 1)) : nullptr;
}

size_t Group::tensor_count() const {
  size_t n = 0;
  for (const auto& c : children_) n += c.is_tensor() ? 1 : c.group().tensor_count();
  return n;
}

uint64_t Group::tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& c : children_) n += c.is_tensor() ? c.tensor().nbytes() : c.group().tensor_bytes();
  return n;
}

void Group::for_each_tensor(const std::function<void(const std::string&, const Tensor&)>& f,
                            const std::string& prefix) const {
  for (const auto& c : children_) {
    std::string p = join_path(prefix, c.name);
    if (c.is_tensor())
      f(p, c.tensor());
    else
      c.group().for_each_tensor(f, p);
  }
}

}  // namespace ckpt
