#include "st_document.hpp"

#include "st_layout.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_value.hpp>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace ckpt_safetensors {

using ckpt::sdk::fail;
using json = nlohmann::json;

namespace {

std::string dump(const json& j, const std::string& where) {
  try {
    return j.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::type_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    fail(CKPT_ERR_UNSUPPORTED, where + " is not valid UTF-8 (" + what + "); safetensors headers are JSON text");
  }
}

}  // namespace

std::string json_string(std::string_view s, const std::string& where) { return dump(json(std::string(s)), where); }

// ---- writing ------------------------------------------------------------------------------------

std::string document_text(const ckpt::sdk::Tree& tree, size_t open_groups) {
  std::string text = ckpt::sdk::write_skeleton(tree, kDocumentKeys, {});
  // Each open group would end with "]}", the document itself with one more '}'.
  if (open_groups > 0) text.resize(text.size() - (2 * open_groups + 1));
  return text;
}

void check_document_values(const ckpt::sdk::Tree& tree) {
  // As the reader counts them: every value, object and array, not keys. The document, "format",
  // "version"; per group its object, name (but the root's), attribute and member arrays; per
  // attribute its array, name, type and value (an array and its elements); per tensor its
  // object and name.
  uint64_t values = 3;
  for (size_t g = 0; g < tree.groups.size(); ++g) {
    values += g == 0 ? 3 : 4;
    for (const ckpt::sdk::Tree::Attribute& a : tree.groups[g].attributes) {
      const ckpt::sdk::Value& v = a.value;
      values += 4 + v.bools.size() + v.ints.size() + v.floats.size() + v.strings.size();
    }
  }
  values += 2 * tree.tensors.size();
  if (values > kMaxDocumentValues)
    fail(CKPT_ERR_LIMIT, std::string(kMetadataKey) + "[" + quote_name(kDocumentKey) + "]: the document would be more than " +
                             std::to_string(kMaxDocumentValues) + " JSON values, which ckpt's safetensors reader refuses");
}

// ---- reading ------------------------------------------------------------------------------------

namespace {

using ckpt::sdk::ValueView;
using ckpt::sdk::ViewTree;

ckpt_str str(std::string_view s) { return {s.data(), s.size()}; }

// kAliasesKey's entries, alias key -> header index, found by a tensor's path without a copy of it.
struct ViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Aliases = std::unordered_map<std::string, size_t, ViewHash, std::equal_to<>>;

// Assembles the tree: groups, their children by name, and which header tensors are placed.
class TreeBuilder {
 public:
  // Builds into `listing`, whose tree is unindexed: the builder indexes names itself, and a
  // plain file's tensors only when a group of theirs needs it (see member).
  TreeBuilder(const Header& h, Listing& listing)
      : h_(h), tree_(listing.tree), alias_targets_(listing.alias_targets), placed_(h.tensors.size(), false) {
    tree_.tensors.reserve(h.tensors.size());
    children_.emplace_back();
    complete_.push_back(false);
    attributes_.emplace_back();
  }

  // A copy of a name or string that is not in the header as it is listed (the document
  // entry's are parsed out of a JSON string), alive as long as the tree.
  std::string_view keep(std::string_view s) { return tree_.keep(s); }

  // Valid in a document: non-empty, no '/', no NUL. `code` says whose fault a bad one is.
  // `where` is a string, or anything that makes one (only when a message is needed).
  template <class Where>
  static void check_name(std::string_view name, const Where& where, ckpt_status_code code) {
    if (name.empty() || name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
      fail(code, std::string(where) + ": " + name_problem(name));
  }
  // What is wrong with a name check_name refuses.
  static std::string name_problem(std::string_view name) {
    if (name.empty()) return "an empty name (ckpt names are non-empty)";
    if (name.find('/') != std::string_view::npos) return "the name " + quote_name(name) + " holds '/' (ckpt names do not)";
    return "the name " + quote_name(name) + " holds a NUL byte (ckpt names do not)";
  }

  // `name` must outlive the tree: a view into the header, or kept.
  template <class Where>
  size_t group_child(size_t parent, std::string_view name, const Where& where, ckpt_status_code code) {
    check_name(name, where, code);
    complete(parent);
    if (member(parent, name)) fail(code, std::string(where) + ": a second member named " + quote_name(name));
    const size_t index = tree_.add_group(parent, name);
    children_.emplace_back();
    complete_.push_back(false);
    attributes_.emplace_back();
    children_[parent].insert(tree_.groups[parent].children.size() - 1, member_name(parent));
    return index;
  }

  // `unique_path`: the caller knows no other tensor has this path (a plain file's keys are
  // unique), so only a group of the name can clash.
  template <class Where>
  void tensor_child(size_t parent, std::string_view name, size_t tensor, const Where& where, ckpt_status_code code,
                    bool unique_path = false) {
    check_name(name, where, code);
    // A tensor's name is the end of its header key (the key is its '/'-joined path), so the
    // tree keeps a view of the key: NUL-terminated, and no copy of a million names.
    const std::string& key = h_.tensors[tensor].key;
    if (key.size() < name.size() || std::string_view(key).substr(key.size() - name.size()) != name)
      fail(CKPT_ERR_INTERNAL, "tensor " + quote_name(name) + " is not the end of its key " + quote_name(key));
    if (!unique_path) complete(parent);
    const TensorEntry& e = h_.tensors[tensor];
    ViewTree::Tensor t;
    t.name = std::string_view(key).substr(key.size() - name.size());
    t.dtype = e.dtype;
    t.nbytes = e.end - e.begin;
    t.id = tensor;  // the shape comes at take()
    tree_.add_tensor(parent, std::move(t));
    placed_[tensor] = true;
    if (unique_path && !complete_[parent]) {
      // The index holds the group's groups: a plain file of a million tensors in one group
      // never indexes them (their keys were checked unique as the header was read).
      if (const ViewTree::Child* other = member(parent, name))
        fail(code, std::string(where) + ": " + quote_name(name) + " is also a group of the tensors under '" + key +
                       "/', so it cannot be a tensor (ckpt reads '/' in names as a group path)");
      return;
    }
    // Inserted first: one probe of the index both finds a clash and records the member.
    if (!children_[parent].insert(tree_.groups[parent].children.size() - 1, member_name(parent))) {
      tree_.groups[parent].children.pop_back();
      const std::string clash(tree_.tensors.back().name);
      const ViewTree::Child* other = member(parent, clash);
      if (other && !other->is_tensor)
        fail(code, std::string(where) + ": " + quote_name(clash) + " is also a group of the tensors under '" +
                       h_.tensors[tensor].key + "/', so it cannot be a tensor (ckpt reads '/' in names as a group path)");
      fail(code, std::string(where) + ": a second member named " + quote_name(clash));
    }
  }

  // A tensor named by the document entry whose bytes are those of header tensor `target`.
  template <class Where>
  void alias_child(size_t parent, std::string_view name, size_t target, const Where& where) {
    check_name(name, where, CKPT_ERR_FORMAT);
    complete(parent);
    const TensorEntry& e = h_.tensors[target];
    ViewTree::Tensor t;
    t.name = keep(name);
    t.dtype = e.dtype;
    t.nbytes = e.end - e.begin;
    t.id = h_.tensors.size() + alias_targets_.size();
    alias_targets_.push_back(target);
    tree_.add_tensor(parent, std::move(t));
    if (!children_[parent].insert(tree_.groups[parent].children.size() - 1, member_name(parent)))
      fail(CKPT_ERR_FORMAT, std::string(where) + ": a second member named " + quote_name(name));
  }

  // The value of a new attribute, to be filled in. `name` and the value's strings must outlive
  // the tree: views into the header, or kept.
  template <class Where>
  ValueView& attribute(size_t group, std::string_view name, const Where& where, ckpt_status_code code) {
    check_name(name, where, code);
    if (!attributes_[group].emplace(name).second)
      fail(code, std::string(where) + ": a second attribute named " + quote_name(name));
    tree_.add_attribute(group, name, {});
    return tree_.groups[group].attributes.back().value;
  }

  // The value of the attribute `group` had last (attribute), to be filled in.
  ValueView& last_attribute(size_t group) { return tree_.groups[group].attributes.back().value; }

  // Where a plain safetensors file's tensor goes: its name split at '/', groups made as needed.
  void place_by_name(size_t tensor) {
    const TensorEntry& t = h_.tensors[tensor];
    // Made only when needed: a header may list a million tensors.
    struct Where {
      const TensorEntry& t;
      operator std::string() const { return "at byte " + std::to_string(t.at) + " (tensor " + quote_name(t.key) + ")"; }
    } where{t};
    size_t group = 0;
    std::string_view rest = t.key;
    for (size_t slash; (slash = rest.find('/')) != std::string_view::npos; rest.remove_prefix(slash + 1)) {
      const std::string_view segment = rest.substr(0, slash);  // stays in the header
      const ViewTree::Child* it = member(group, segment);
      if (!it) {
        complete(group);
        it = member(group, segment);
      }
      if (!it) {
        group = group_child(group, segment, where, CKPT_ERR_UNSUPPORTED);
      } else if (!it->is_tensor) {
        group = it->index;
      } else {
        fail(CKPT_ERR_UNSUPPORTED, std::string(where) + ": " + quote_name(segment) + " is the name of tensor " +
                                       quote_name(h_.tensors[tree_.tensors[it->index].id].key) +
                                       ", so it cannot also be a group (ckpt reads '/' in names as a group path)");
      }
    }
    tensor_child(group, rest, tensor, where, CKPT_ERR_UNSUPPORTED, /*unique_path=*/true);
  }

  void place_the_rest() {
    for (size_t i = 0; i < placed_.size(); ++i)
      if (!placed_[i]) place_by_name(i);
  }

  // The header index of `key`, or fails.
  template <class Where>
  size_t tensor_at(std::string_view key, const Where& where) const {
    if (by_key_.empty())
      for (size_t i = 0; i < h_.tensors.size(); ++i) by_key_.emplace(h_.tensors[i].key, i);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) fail(CKPT_ERR_FORMAT, std::string(where) + ": the header has no tensor " + quote_name(key));
    return it->second;
  }

  // Gives every tensor its shape, moved out of the header (nothing reads it there afterwards;
  // a copy would cost an allocation per tensor), and maps ids to tensors.
  void finish(Header& header, Listing& listing) {
    const size_t n = header.tensors.size();
    listing.slot.assign(n + alias_targets_.size(), 0);
    for (size_t k = 0; k < tree_.tensors.size(); ++k) listing.slot[tree_.tensors[k].id] = k;
    for (size_t a = 0; a < alias_targets_.size(); ++a)  // before their targets' shapes move
      tree_.tensors[listing.slot[n + a]].shape = header.tensors[alias_targets_[a]].shape;
    for (ViewTree::Tensor& t : tree_.tensors)
      if (t.id < n) t.shape = std::move(header.tensors[t.id].shape);
  }

 private:
  // The name of member i of group g, and the member of g named `name`.
  struct MemberName {
    const ViewTree* tree;
    size_t g;
    std::string_view operator()(size_t i) const {
      const ViewTree::Child& c = tree->groups[g].children[i];
      return c.is_tensor ? tree->tensors[c.index].name : tree->groups[c.index].name;
    }
  };
  MemberName member_name(size_t g) const { return {&tree_, g}; }
  // The member of g named `name` among those indexed: all of them once complete(g), else its
  // groups only.
  const ViewTree::Child* member(size_t g, std::string_view name) const {
    auto i = children_[g].find(name, member_name(g));
    return i ? &tree_.groups[g].children[*i] : nullptr;
  }
  // Indexes g's tensors too, from now on.
  void complete(size_t g) {
    if (complete_[g]) return;
    complete_[g] = true;
    const auto& children = tree_.groups[g].children;
    for (size_t i = 0; i < children.size(); ++i)
      if (children[i].is_tensor && !children_[g].insert(i, member_name(g)))
        fail(CKPT_ERR_UNSUPPORTED, "tensor " + quote_name(tree_.tensors[children[i].index].name) +
                                       " has the name of a group beside it");
  }

  const Header& h_;
  ViewTree& tree_;
  std::vector<size_t>& alias_targets_;
  std::vector<ckpt::sdk::NameIndex> children_;  // per group, over its children (see member)
  std::vector<bool> complete_;                  // per group: its tensors are indexed too
  std::vector<std::unordered_set<std::string>> attributes_;
  mutable std::unordered_map<std::string_view, size_t> by_key_;  // made on first use
  std::vector<bool> placed_;
};

// "at byte N (__metadata__['ckpt.document']/root/members/0)": a place in the document entry,
// as a JSON pointer into it.
std::string document_where(const MetadataEntry& entry, std::span<const ckpt::sdk::SkeletonStep> steps) {
  return "at byte " + std::to_string(entry.at) + " (" + std::string(kMetadataKey) + "[" + quote_name(kDocumentKey) + "]" +
         ckpt::sdk::json_pointer(steps) + ")";
}

// What was wrong with the document entry, in the words this plugin has always used (the
// codec's own words name document paths; safetensors' name the place in the entry's JSON).
std::string document_words(const MetadataEntry& entry, const ckpt::sdk::SkeletonFault& f) {
  using P = ckpt::sdk::SkeletonProblem;
  const std::string where = document_where(entry, f.at.steps) + ": ";
  const std::string name = quote_name(f.name);
  switch (f.problem) {
    case P::text_too_deep: return where + "nested deeper than " + std::to_string(kMaxDepth) + " groups";
    case P::text_has_nul: return where + "not valid JSON: " + std::string(f.detail);
    case P::text_not_json: {
      // nlohmann's message starts with its id and "parse error at line 1, column N: "; the
      // character offset says the same, and the last token may hold bytes that are not UTF-8.
      std::string what(f.detail);
      if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
      if (auto last = what.find("; last read: "); last != std::string::npos) what = what.substr(0, last);
      return where + "not valid JSON at character " + std::to_string(f.number) + ": " + what;
    }
    case P::too_many_values: return where + "more than " + std::to_string(f.number) + " JSON values";
    case P::duplicate_key: return where + "duplicate key " + name;
    case P::not_an_object: return where + "the document entry must be a JSON object";
    case P::unknown_top_key: return where + "unknown key " + name;
    case P::wrong_format: return where + "expected \"" + std::string(kDocumentFormat) + "\"";
    case P::version_not_integer: return where + "expected a positive integer";
    case P::version_unknown:
      if (f.number < 1) return where + "expected a positive integer";
      return where + "version " + std::to_string(f.number) + " is newer than this reader (" +
             std::to_string(kDocumentVersion) + ")";
    case P::no_root:
    case P::group_not_object: return where + "expected an object";
    case P::group_too_deep: return where + "groups nested deeper than " + std::to_string(kMaxDepth);
    case P::unknown_group_key:
      return where + "unknown key " + name + " (a group has " + (f.root ? "" : "group, ") + "attributes and members)";
    case P::list_not_array: return where + "expected an array";
    case P::child_not_object: return where + "a member is an object {\"tensor\": name} or a group";
    case P::child_kind: return where + "a member is an object {\"tensor\": name} or has \"group\": name";
    case P::unknown_tensor_key: return where + "a tensor member has only the key \"tensor\"";
    case P::not_text:
      if (f.detail == "group") return where + "a member is an object {\"tensor\": name} or has \"group\": name";
      if (f.detail == "attribute") return where + "an attribute is [name, type, value]";
      return where + "expected a string";
    case P::bad_name: return where + TreeBuilder::name_problem(f.name);
    case P::attribute_not_triple: return where + "an attribute is [name, type, value]";
    case P::unknown_type: return where + "unknown type " + quote_name(f.name, true);
    case P::wrong_value:
      if (f.name == "bool") return where + "expected true or false";
      if (f.name == "int64") return where + "expected an integer";
      if (!f.found_text) return where + "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\"";
      return where + "expected a number, \"NaN\", \"NaN:0x<16 hex digits of a NaN>\", \"Infinity\" or \"-Infinity\", found " +
             quote_name(f.detail, true);
    case P::int_out_of_range: return where + "integer out of the range of int64";
    case P::not_an_array: return where + "a " + std::string(f.name) + " value is an array";
    default: return where + ckpt::sdk::skeleton_words(f, kDocumentKeys);  // not reached in this dialect
  }
}

// Puts the document entry, as the SDK's codec parses it, into the builder: groups and
// attributes as they come, each tensor at the header entry its path names (or, for an alias,
// at the entry kAliasesKey gives it).
class DocumentSink final : public ckpt::sdk::SkeletonSink {
 public:
  // `aliases`: kAliasesKey's entries, alias key -> header index; each must be named once.
  DocumentSink(TreeBuilder& b, const MetadataEntry& entry, Aliases aliases)
      : b_(b), entry_(entry), aliases_(std::move(aliases)) {}

  size_t group(size_t parent, std::string_view name, const ckpt::sdk::SkeletonPlace& at) override {
    return b_.group_child(parent, b_.keep(name), Where{entry_, at}, CKPT_ERR_FORMAT);
  }
  void attribute_name(size_t group, std::string_view name, const ckpt::sdk::SkeletonPlace& at) override {
    b_.attribute(group, b_.keep(name), Where{entry_, at}, CKPT_ERR_FORMAT);
  }
  void attribute(size_t group, std::string_view, ValueView&& v, const ckpt::sdk::SkeletonPlace&) override {
    // The views are into the parsed entry, which goes away: the tree keeps its own copies.
    v.s = b_.keep(v.s);
    for (ckpt_str& e : v.strings) e = str(b_.keep({e.data, e.size}));
    b_.last_attribute(group) = std::move(v);
  }
  void tensor(size_t parent, ViewTree::Tensor&& t, std::string_view, std::string_view path,
              const ckpt::sdk::SkeletonPlace& at) override {
    const Where where{entry_, at};
    if (!aliases_.empty())
      if (auto a = aliases_.find(path); a != aliases_.end()) {
        b_.alias_child(parent, t.name, a->second, where);
        aliases_.erase(a);
        return;
      }
    b_.tensor_child(parent, t.name, b_.tensor_at(path, where), where, CKPT_ERR_FORMAT);
  }

  // After the parse: every alias was named.
  void finish() const {
    if (!aliases_.empty())
      fail(CKPT_ERR_FORMAT, std::string(kMetadataKey) + "[" + quote_name(kAliasesKey) + "]: alias " +
                                quote_name(aliases_.begin()->first) + " is no tensor of the document");
  }

 private:
  // The place for a message, made only when one is needed (once per tensor would cost more
  // than the tensor).
  struct Where {
    const MetadataEntry& entry;
    const ckpt::sdk::SkeletonPlace& at;
    operator std::string() const { return document_where(entry, at.steps); }
  };

  TreeBuilder& b_;
  const MetadataEntry& entry_;
  Aliases aliases_;
};

}  // namespace

namespace {

// The entries beside the document entry are copies for plain readers (docs/formats/
// safetensors.md): exactly the root's string attributes in order (then meta's, which files
// before ckpt 0.2 lack), "format": "pt" unless one of
// them is named format, then the document. Anything else there would be seen by every other
// reader of the file and by ckpt not at all, so it is refused.
void check_plain_copies(const ViewTree& tree, const Header& header) {
  // Order aside: other readers take __metadata__ as a map.
  std::map<std::string, std::string> expected;
  for (const ViewTree::Attribute& a : tree.groups[0].attributes)
    if (a.value.type == CKPT_VALUE_STRING && a.name != kDocumentKey && a.name != kAliasesKey)
      expected.emplace(a.name, a.value.s);
  // Copies of meta's strings (what another tool's __metadata__ became) that the root does not
  // shadow: written since ckpt 0.2, so a file may lack them.
  std::map<std::string, std::string> optional;
  for (const ViewTree::Child& c : tree.groups[0].children)
    if (!c.is_tensor && tree.groups[c.index].name == "meta")
      for (const ViewTree::Attribute& a : tree.groups[c.index].attributes)
        if (a.value.type == CKPT_VALUE_STRING && a.name != kAliasesKey && !expected.count(std::string(a.name)))
          optional.emplace(a.name, a.value.s);
  expected.emplace(kFormatTagKey, kFormatTagValue);  // unless the root has its own
  for (const MetadataEntry& m : header.metadata) {
    if (m.key == kDocumentKey || m.key == kAliasesKey) continue;
    if (auto o = optional.find(m.key); o != optional.end() && o->second == m.value) {
      optional.erase(o);
      if (m.key == kFormatTagKey) expected.erase(std::string(kFormatTagKey));
      continue;
    }
    auto it = expected.find(m.key);
    if (it == expected.end() || it->second != m.value)
      fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(m.at) + " (" + std::string(kMetadataKey) + "[" + quote_name(m.key) +
                                "]): not a copy of the document's root string attributes, which is all ckpt writes "
                                "beside it (other readers would see it, ckpt would not; the file was changed after ckpt "
                                "wrote it)");
    expected.erase(it);
  }
  for (const auto& [k, v] : expected)
    if (k != kFormatTagKey || v != kFormatTagValue)
      fail(CKPT_ERR_FORMAT, std::string(kMetadataKey) + ": the copy of root attribute " + quote_name(k) +
                                " is missing (the file was changed after ckpt wrote it)");
}

// A plain file's kIntegrityKey entry as the group meta/integrity: the digests, in the bytewise
// order of the tensors' keys, paired with those keys again.
void add_plain_integrity(TreeBuilder& b, size_t meta, const Header& header, const MetadataEntry& m,
                         const std::string& where) {
  auto bad = [&](const std::string& what) -> void { fail(CKPT_ERR_FORMAT, where + ": " + what); };
  // Bounded before it is parsed (the entry may be most of a 100 MB header, and a parse builds
  // a tree of it), and then required in the one form ckpt writes: flat, sorted keys, no space,
  // so no duplicate key or other spelling can read two ways.
  const uint64_t packed_max = (8 * uint64_t{header.tensors.size()} + 2) / 3 * 4;
  if (m.value.size() > packed_max + 512 || ckpt::sdk::json_nesting(m.value) > 1)
    return bad("larger or deeper than a record of " + std::to_string(header.tensors.size()) + " tensors' hashes");
  const json j = json::parse(m.value, nullptr, false);
  if (!j.is_object() || j.size() != 4 || j.dump() != m.value)
    return bad("expected {\"algorithm\", \"digests\", \"manifest\", \"manifest_encoding\"} as ckpt writes it");
  for (const char* k : {"algorithm", "manifest", "manifest_encoding", "digests"})
    if (!j.contains(k) || !j[k].is_string()) return bad(std::string("'") + k + "' is missing or not a string");
  const std::string& packed = j["digests"].get_ref<const std::string&>();
  std::vector<std::string_view> keys;
  keys.reserve(header.tensors.size());
  for (const TensorEntry& t : header.tensors) keys.push_back(t.key);
  std::sort(keys.begin(), keys.end());
  std::vector<unsigned char> raw(8 * keys.size() + 1);
  size_t got = 0;
  const char* end = nullptr;
  if (sodium_base642bin(raw.data(), raw.size(), packed.data(), packed.size(), nullptr, &got, &end,
                        sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
      end != packed.data() + packed.size() || got != 8 * keys.size())
    return bad("'digests' must be base64 of 8 bytes for each of the " + std::to_string(keys.size()) + " tensors");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string digests;
  digests.reserve(16 * keys.size());
  for (size_t i = 0; i < got; ++i) {
    digests += kHex[raw[i] >> 4];
    digests += kHex[raw[i] & 15];
  }
  const size_t g = b.group_child(meta, "integrity", where, CKPT_ERR_FORMAT);
  auto text = [&](const char* name, const std::string& v) {
    ValueView& a = b.attribute(g, name, where, CKPT_ERR_FORMAT);
    a.type = CKPT_VALUE_STRING;
    a.s = b.keep(v);
  };
  text("algorithm", j["algorithm"].get<std::string>());
  // The paths are the header's keys; the digests views into one kept string.
  ValueView& paths = b.attribute(g, "paths", where, CKPT_ERR_FORMAT);
  paths.type = CKPT_VALUE_STRING_ARRAY;
  paths.strings.reserve(keys.size());
  for (std::string_view k : keys) paths.strings.push_back(str(k));
  ValueView& each = b.attribute(g, "digests", where, CKPT_ERR_FORMAT);
  each.type = CKPT_VALUE_STRING_ARRAY;
  each.strings.reserve(keys.size());
  const std::string_view kept = b.keep(digests);
  for (size_t i = 0; i < keys.size(); ++i) each.strings.push_back(str(kept.substr(16 * i, 16)));
  text("manifest", j["manifest"].get<std::string>());
  text("manifest_encoding", j["manifest_encoding"].get<std::string>());
}

}  // namespace

namespace {

// kAliasesKey's entry: alias keys the header does not hold, each naming a tensor it does.
Aliases read_aliases(const MetadataEntry& m, const TreeBuilder& b, const Header& header,
                                                     const ckpt::sdk::ReadLimits& limits) {
  const std::string where = "at byte " + std::to_string(m.at) + " (" + std::string(kMetadataKey) + "[" + quote_name(kAliasesKey) + "])";
  // At most one alias per tensor of the document, which names at most kMaxDocumentValues.
  size_t values = 0;
  std::unordered_set<std::string> seen;
  json j;
  try {
    j = json::parse(m.value, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth > 1 || ++values > 2 * kMaxDocumentValues) fail(CKPT_ERR_LIMIT, where + ": not an object of strings, or too large");
      // A DOM keeps one of two equal keys; another parser might keep the other.
      if (event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
        fail(CKPT_ERR_FORMAT, where + ": alias " + quote_name(parsed.get<std::string>()) + " twice");
      return true;
    });
  } catch (const json::exception&) {
    fail(CKPT_ERR_FORMAT, where + ": not a JSON object");
  }
  if (!j.is_object()) fail(CKPT_ERR_FORMAT, where + ": not a JSON object");
  std::unordered_set<std::string_view> keys;
  for (const TensorEntry& t : header.tensors) keys.insert(t.key);
  Aliases out;
  uint64_t listed = 0;
  for (auto& [alias, target] : j.items()) {
    if (!target.is_string()) fail(CKPT_ERR_FORMAT, where + ": alias " + quote_name(alias) + " names no tensor key");
    if (keys.count(alias))
      fail(CKPT_ERR_FORMAT, where + ": alias " + quote_name(alias) + " is also a tensor of the header (two readings)");
    const size_t t = b.tensor_at(target.get<std::string>(), where + ", alias " + quote_name(alias));
    listed += header.tensors[t].end - header.tensors[t].begin;
    out.emplace(alias, t);
  }
  // Each alias lists its target's bytes again: bounded like any view that repeats storage.
  uint64_t stored = 0;
  for (const TensorEntry& t : header.tensors) stored += t.end - t.begin;
  limits.check_expansion(listed + stored, stored, "", where + ": its aliases");
  return out;
}

}  // namespace

Listing build_tree(Header& header, const ckpt::sdk::ReadLimits& limits) {
  Listing listing;
  TreeBuilder b(header, listing);
  const MetadataEntry* document = nullptr;
  const MetadataEntry* aliases = nullptr;
  for (const MetadataEntry& m : header.metadata) {
    if (m.key == kDocumentKey) document = &m;
    if (m.key == kAliasesKey) aliases = &m;
  }
  if (aliases && !document)
    fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(aliases->at) + " (" + std::string(kMetadataKey) + "[" +
                              quote_name(kAliasesKey) + "]): aliases in a file without ckpt's document, which names them");
  if (document) {
    DocumentSink sink(b, *document,
                      aliases ? read_aliases(*aliases, b, header, limits) : Aliases{});
    ckpt::sdk::SkeletonSource source;
    source.describe = [&](const ckpt::sdk::SkeletonFault& f) { return document_words(*document, f); };
    ckpt::sdk::read_skeleton(document->value, kDocumentKeys, source, sink);
    sink.finish();
    b.place_the_rest();
    check_plain_copies(listing.tree, header);
    b.finish(header, listing);
    return listing;
  } else {
    // ckpt's document under another key is a damaged file (one flipped byte in the key), not
    // a plain safetensors file: read as plain, it would lose the hashes that would show it.
    const std::string ours = "{\"format\":" + json(kDocumentFormat).dump() + ",";
    // Another tool's __metadata__ ({"format": "pt"} from Hugging Face's writer) describes the
    // file, so it is the document's meta, not part of the state beside the tensors (where a
    // .pt written from it would hold a 'format' key that load_state_dict(strict=True) refuses).
    // Only when a tensor itself is named meta does it stay on the root, as before.
    bool meta_free = true;
    for (const TensorEntry& t : header.tensors)
      if (t.key == "meta" || t.key.starts_with("meta/")) meta_free = false;
    size_t meta = 0;
    for (const MetadataEntry& m : header.metadata) {
      const std::string where = "at byte " + std::to_string(m.at) + " (" + std::string(kMetadataKey) + "[" + quote_name(m.key) + "])";
      if (m.value.rfind(ours, 0) == 0)
        fail(CKPT_ERR_FORMAT, where + ": holds a ckpt document, whose key must be " + quote_name(std::string(kDocumentKey)) +
                                  " (the file is damaged)");
      if (m.key == kIntegrityKey && !meta_free)
        fail(CKPT_ERR_FORMAT, where + ": ckpt's record of hashes in a file whose tensors hold meta, where it would go");
      if (meta_free && meta == 0) meta = b.group_child(0, "meta", where, CKPT_ERR_UNSUPPORTED);
      if (meta_free && m.key == kIntegrityKey) {
        add_plain_integrity(b, meta, header, m, where);
        continue;
      }
      ValueView& a = b.attribute(meta, m.key, where, CKPT_ERR_UNSUPPORTED);
      a.type = CKPT_VALUE_STRING;
      a.s = m.value;  // the header lives as long as the tree
    }
  }
  b.place_the_rest();
  b.finish(header, listing);
  return listing;
}

}  // namespace ckpt_safetensors
