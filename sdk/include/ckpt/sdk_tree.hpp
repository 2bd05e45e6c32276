// A document without tensor bytes: groups with typed attributes, and tensors that carry an id
// into the plugin's own per-tensor storage (file offsets, initializer names, strided views),
// which the plugin keeps beside the tree. A reader builds one at open and replays it to every
// visitor; a writer that stores the skeleton records one from the host's calls (TreeRecorder).
//
// Nodes live in flat vectors (groups[0] is the root) and refer to each other by index, so
// destroying or copying a tree never recurses however deep the file nested it.
//
// Tree owns its strings. ViewTree holds string_views, for a reader whose names and strings stay
// in a mapped file: building it copies no text. What is not in the file (an unescaped name, a
// decoded string) is kept by the tree itself (keep()); a ViewTree is move-only, as its views
// may point into its own storage.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_value.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ckpt::sdk {

// An attribute value whose strings are views: into a mapped file, or kept by a ViewTree.
struct ValueView {
  uint32_t type = 0;  // ckpt_value_type; 0 until set
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string_view s{};
  std::vector<uint8_t> bools{};
  std::vector<int64_t> ints{};
  std::vector<double> floats{};
  std::vector<ckpt_str> strings{};

  // The same contract as Value::view; `scratch` goes unused, the views are stored already.
  ckpt_value view(std::vector<ckpt_str>& /*scratch*/) const {
    switch (type) {
      case CKPT_VALUE_BOOL: return make_bool(b);
      case CKPT_VALUE_INT64: return make_int(i);
      case CKPT_VALUE_FLOAT64: return make_float(f);
      case CKPT_VALUE_STRING: return make_string(s);
      case CKPT_VALUE_BOOL_ARRAY: return make_bools(bools);
      case CKPT_VALUE_INT64_ARRAY: return make_ints(ints);
      case CKPT_VALUE_FLOAT64_ARRAY: return make_floats(floats);
      case CKPT_VALUE_STRING_ARRAY: return make_strings(strings);
      default: fail(CKPT_ERR_INTERNAL, "an attribute value without a type");
    }
  }
};

// Strings kept for a tree of views, packed into large blocks: a std::string each would cost
// tens of bytes per (often empty) string, many times what the string took in the file. Views
// stay valid while the arena lives, also after it is moved.
class TextArena {
 public:
  TextArena() = default;
  TextArena(TextArena&& o) noexcept
      : blocks_(std::move(o.blocks_)), at_(std::exchange(o.at_, nullptr)), left_(std::exchange(o.left_, 0)) {}
  TextArena& operator=(TextArena&& o) noexcept {
    blocks_ = std::move(o.blocks_);
    at_ = std::exchange(o.at_, nullptr);
    left_ = std::exchange(o.left_, 0);
    return *this;
  }
  TextArena(const TextArena&) = delete;
  TextArena& operator=(const TextArena&) = delete;

  std::string_view keep(std::string_view s) {
    // Empty strings, which a hostile file can hold millions of, cost nothing.
    if (s.empty()) return std::string_view("", 0);
    if (s.size() > kBlock / 4) {
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(s.size()));
      std::memcpy(blocks_.back().get(), s.data(), s.size());
      return {blocks_.back().get(), s.size()};
    }
    if (s.size() > left_) {
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(kBlock));
      at_ = blocks_.back().get();
      left_ = kBlock;
    }
    std::memcpy(at_, s.data(), s.size());
    const std::string_view kept(at_, s.size());
    at_ += s.size();
    left_ -= s.size();
    return kept;
  }

 private:
  // Blocks hold many small strings; a string of more than a quarter block gets its own, so at
  // most a quarter of each block goes unused.
  static constexpr size_t kBlock = size_t{64} << 10;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* at_ = nullptr;
  size_t left_ = 0;
};

namespace detail {
// What a ViewTree's views may point into.
using KeptStrings = TextArena;
struct NoKeptStrings {};
}  // namespace detail

template <class Str, class Val>
class BasicTree {
 public:
  static constexpr size_t npos = static_cast<size_t>(-1);
  static constexpr bool kViews = std::is_same_v<Str, std::string_view>;

  struct Attribute {
    Str name{};
    Val value{};
  };
  struct Tensor {
    Str name{};
    uint32_t dtype = 0;
    std::vector<int64_t> shape{};
    uint64_t nbytes = 0;
    uint64_t id = 0;  // what list() reports and read_tensor gets back: the plugin's own index
  };
  struct Child {
    bool is_tensor = false;
    size_t index = 0;  // into tensors or groups
  };
  struct Group {
    Str name{};
    std::vector<Attribute> attributes{};
    std::vector<Child> children{};
  };

  std::vector<Group> groups;  // groups[0] is the root, named ""
  std::vector<Tensor> tensors;

  // With `index_names`, every group keeps its children and attributes indexed by name: lookups
  // cost O(1) (a hostile file's group of n members costs O(n) to build), and adding a name a
  // group holds already fails. Without, lookups scan and nothing is checked.
  explicit BasicTree(bool index_names = false) : indexed_(index_names) {
    groups.emplace_back();
    if (indexed_) index_.emplace_back();
  }

  Group& root() { return groups[0]; }
  const Group& root() const { return groups[0]; }
  bool indexed() const { return indexed_; }

  size_t add_group(size_t parent, Str name) {
    const size_t g = groups.size();
    Group& made = groups.emplace_back();
    made.name = std::move(name);
    if (indexed_) index_.emplace_back();
    add_child(parent, {false, g});
    return g;
  }
  size_t add_tensor(size_t parent, Tensor t) {
    const size_t k = tensors.size();
    tensors.push_back(std::move(t));
    add_child(parent, {true, k});
    return k;
  }
  void add_attribute(size_t group, Str name, Val value) {
    auto& attributes = groups[group].attributes;
    attributes.push_back({std::move(name), std::move(value)});
    if (indexed_ && !index_[group].attributes.insert(attributes.size() - 1, AttributeName{this, group})) {
      const std::string n(attributes.back().name);
      attributes.pop_back();
      fail(CKPT_ERR_INTERNAL, "attribute '" + n + "' added twice to group '" + std::string(groups[group].name) + "'");
    }
  }
  // Adds the attribute, or replaces the value of one of the same name where it stands.
  void set_attribute(size_t group, Str name, Val value) {
    const size_t a = attribute_index(group, name);
    if (a == npos) add_attribute(group, std::move(name), std::move(value));
    else groups[group].attributes[a].value = std::move(value);
  }

  // The child named `name` of `group`, if it has one.
  std::optional<Child> find_child(size_t group, std::string_view name) const {
    const auto& children = groups[group].children;
    if (indexed_) {
      const auto at = index_[group].children.find(name, ChildName{this, group});
      if (at) return children[*at];
      return std::nullopt;
    }
    for (const Child& c : children)
      if (name_of(c) == name) return c;
    return std::nullopt;
  }
  // The child group `name` of `group`, or npos.
  size_t find_group(size_t group, std::string_view name) const {
    const auto c = find_child(group, name);
    return c && !c->is_tensor ? c->index : npos;
  }
  // The group at a '/'-separated path from the root ("" is the root), or npos.
  size_t find_path(std::string_view path) const {
    size_t g = 0;
    while (!path.empty() && g != npos) {
      const size_t slash = path.find('/');
      g = find_group(g, path.substr(0, slash));
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    return g;
  }
  const Tensor* find_tensor(size_t group, std::string_view name) const {
    const auto c = find_child(group, name);
    return c && c->is_tensor ? &tensors[c->index] : nullptr;
  }
  const Val* find_attribute(size_t group, std::string_view name) const {
    const size_t a = attribute_index(group, name);
    return a == npos ? nullptr : &groups[group].attributes[a].value;
  }

  // ViewTree only: a copy of `s` that lives as long as the tree, for a name or string that is
  // not in the mapped file as it is to be listed.
  std::string_view keep(std::string_view s)
    requires kViews
  {
    return kept_.keep(s);
  }

  // Reports the tree to the host, root first, children in the order added. Iterative, so any
  // depth is safe. Safe to call from several threads at once.
  void list(const Visitor& visitor) const {
    std::vector<ckpt_str> scratch;
    std::string name;  // reused: a view is handed on NUL-terminated without an allocation per name
    auto text = [&](const Str& s) -> const std::string& {
      if constexpr (kViews) {
        name.assign(s);
        return name;
      } else {
        return s;
      }
    };
    struct Open {
      size_t group, next;
    };
    std::vector<Open> stack{{0, 0}};
    auto begin = [&](size_t g) {
      const Group& group = groups[g];
      visitor.begin_group(text(group.name));
      for (const Attribute& a : group.attributes) visitor.attribute(text(a.name), a.value.view(scratch));
    };
    begin(0);
    while (!stack.empty()) {
      Open& open = stack.back();
      const auto& children = groups[open.group].children;
      if (open.next == children.size()) {
        visitor.end_group();
        stack.pop_back();
        continue;
      }
      const Child c = children[open.next++];
      if (c.is_tensor) {
        const Tensor& t = tensors[c.index];
        visitor.tensor(text(t.name), t.dtype, t.shape, t.nbytes, t.id);
      } else {
        begin(c.index);
        stack.push_back({c.index, 0});
      }
    }
  }

 private:
  struct ChildName {
    const BasicTree* tree;
    size_t group;
    std::string_view operator()(size_t i) const { return tree->name_of(tree->groups[group].children[i]); }
  };
  struct AttributeName {
    const BasicTree* tree;
    size_t group;
    std::string_view operator()(size_t i) const { return tree->groups[group].attributes[i].name; }
  };
  struct GroupIndex {
    NameIndex children, attributes;
  };

  std::string_view name_of(const Child& c) const {
    return c.is_tensor ? std::string_view(tensors[c.index].name) : std::string_view(groups[c.index].name);
  }
  void add_child(size_t parent, Child c) {
    auto& children = groups[parent].children;
    children.push_back(c);
    if (indexed_ && !index_[parent].children.insert(children.size() - 1, ChildName{this, parent})) {
      children.pop_back();
      fail(CKPT_ERR_INTERNAL, "child '" + std::string(name_of(c)) + "' added twice to group '" +
                                  std::string(groups[parent].name) + "'");
    }
  }
  size_t attribute_index(size_t group, std::string_view name) const {
    const auto& attributes = groups[group].attributes;
    if (indexed_) return index_[group].attributes.find(name, AttributeName{this, group}).value_or(npos);
    for (size_t a = 0; a < attributes.size(); ++a)
      if (attributes[a].name == name) return a;
    return npos;
  }

  bool indexed_ = false;
  std::vector<GroupIndex> index_;  // per group, when indexed_
  [[no_unique_address]] std::conditional_t<kViews, detail::KeptStrings, detail::NoKeptStrings> kept_;
};

using Tree = BasicTree<std::string, Value>;
using ViewTree = BasicTree<std::string_view, ValueView>;

// Builds a Tree from the calls the host makes on a Writer, checking them as it goes: one root
// named "", names non-empty without '/' or NUL and unique in their group, attributes before
// children, and as many of each as begin_group announced. A writer forwards its calls here and
// keeps its own per-tensor data under the id it passes to tensor().
class TreeRecorder {
 public:
  TreeRecorder() : tree_(true) {}

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) {
    if (stack_.empty()) {
      if (root_done_) fail(CKPT_ERR_INVALID_ARGUMENT, "a second root group");
      if (!name.empty())
        fail(CKPT_ERR_INVALID_ARGUMENT, "the root group must be named \"\", got '" + std::string(name) + "'");
      stack_.push_back({0, "", n_attributes, n_children});
      return;
    }
    claim_child(name, "group");
    const Open& parent = stack_.back();
    std::string path = parent.path.empty() ? std::string(name) : parent.path + "/" + std::string(name);
    const size_t g = tree_.add_group(parent.group, std::string(name));
    stack_.push_back({g, std::move(path), n_attributes, n_children});
  }

  void end_group() {
    Open& g = current("end_group");
    if (g.attributes_left != 0 || g.children_left != 0)
      fail(CKPT_ERR_INVALID_ARGUMENT, "end of " + where() + " with " + std::to_string(g.attributes_left) +
                                          " attributes and " + std::to_string(g.children_left) +
                                          " children still announced");
    stack_.pop_back();
    if (stack_.empty()) root_done_ = true;
  }

  void attribute(std::string_view name, const ckpt_value& value) {
    Open& g = current("attribute");
    check_name(name, "attribute name");
    if (g.attributes_left == 0)
      fail(CKPT_ERR_INVALID_ARGUMENT, "attribute '" + std::string(name) + "' in " + where() + " beyond its announced attributes");
    if (tree_.find_attribute(g.group, name))
      fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate attribute '" + std::string(name) + "' in " + where());
    --g.attributes_left;
    tree_.add_attribute(g.group, std::string(name),
                        Value::copy_of(value, "attribute '" + std::string(name) + "' in " + where()));
  }

  // Records the tensor's description under `id`; returns its index in tree().tensors. The
  // caller checks dtype, shape and bytes as its format requires.
  size_t tensor(const TensorInfo& info, uint64_t id) {
    claim_child(info.name, "tensor");
    Tree::Tensor t;
    t.name = std::string(info.name);
    t.dtype = info.dtype;
    t.shape.assign(info.shape.begin(), info.shape.end());
    t.nbytes = info.nbytes;
    t.id = id;
    return tree_.add_tensor(stack_.back().group, std::move(t));
  }

  // The '/'-separated path of the open group ("" for the root); `event` names the call in the
  // error when no group is open.
  const std::string& path(const char* event = "tensor") const {
    check_open(event);
    return stack_.back().path;
  }
  // "the root group" or "group 'a/b'": the open group, for messages.
  std::string where() const {
    if (stack_.size() <= 1) return "the root group";
    return "group '" + stack_.back().path + "'";
  }
  bool done() const { return root_done_ && stack_.empty(); }
  // How many groups are open (0 before the root and after it closed).
  size_t depth() const { return stack_.size(); }
  // The children the open groups announced and have not had yet: what a writer that must fix
  // a size early (a header before the data) still has to expect.
  uint64_t children_left() const {
    uint64_t n = 0;
    for (const Open& g : stack_) n += g.children_left;
    return n;
  }
  // Fails unless the root group was opened and closed.
  void check_done() const {
    if (!done()) fail(CKPT_ERR_INVALID_ARGUMENT, "finish before the root group was closed");
  }

  const Tree& tree() const { return tree_; }
  Tree& tree() { return tree_; }

 private:
  struct Open {
    size_t group;
    std::string path;
    uint64_t attributes_left, children_left;
  };

  void check_open(const char* event) const {
    if (stack_.empty())
      fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " outside any group (the root group is " +
                                          (root_done_ ? "already closed)" : "not open yet)"));
  }
  Open& current(const char* event) {
    check_open(event);
    return stack_.back();
  }
  void check_name(std::string_view name, const char* what) const {
    if (name.empty() || name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
      fail(CKPT_ERR_INVALID_ARGUMENT, std::string("invalid ") + what + " '" + std::string(name) + "' in " + where() +
                                          ": names are non-empty and hold no '/' or NUL");
  }
  void claim_child(std::string_view name, const char* event) {
    Open& g = current(event);
    check_name(name, "name");
    if (g.attributes_left != 0)
      fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " '" + std::string(name) + "' in " + where() + " before its " +
                                          std::to_string(g.attributes_left) + " announced attributes");
    if (g.children_left == 0)
      fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " '" + std::string(name) + "' in " + where() +
                                          " beyond its announced children");
    if (tree_.find_child(g.group, name))
      fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate child '" + std::string(name) + "' in " + where());
    --g.children_left;
  }

  Tree tree_;
  std::vector<Open> stack_;
  bool root_done_ = false;
};

}  // namespace ckpt::sdk
