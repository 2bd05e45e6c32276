// The layout of a ckpt json or msgpack document (docs/formats/json.md, msgpack.md), described
// once as a state machine over tokens. A format's tokeniser calls token() for every token in
// document order; the parser checks the layout, builds the tree (a ckpt::sdk::ViewTree whose
// tensor ids are their indices), and throws ckpt::sdk::Error
// (CKPT_ERR_FORMAT, _LIMIT or _UNSUPPORTED) naming the byte offset and the path of anything
// that is not exactly the layout.
#pragma once

#include "doc_dialect.hpp"
#include "doc_text.hpp"
#include "doc_tokens.hpp"

#include <ckpt/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ckpt_doc {

class LayoutParser {
 public:
  explicit LayoutParser(Dialect& dialect) : d_(dialect) {}
  LayoutParser(const LayoutParser&) = delete;
  LayoutParser& operator=(const LayoutParser&) = delete;

  void token(const Token& t);
  // A token that is not a string where a key belongs.
  [[noreturn]] void not_a_key(const Token& t) const;

  // The finished tree; fails when the top-level object has not closed.
  Tree take(size_t at);
  // What the tree's views into copied text point to: kept beside the tree, as long as it.
  TextArena take_text() { return std::move(text_); }

  bool done() const { return done_; }
  // Open containers: the tokeniser's own stack never outgrows this, which the depth limit bounds.
  size_t depth() const { return frames_.size(); }
  // Inside an array a payload key opened (json's $values).
  bool in_payload() const { return !frames_.empty() && frames_.back().kind == Kind::payload; }

  Tree& tree() { return tree_; }
  const Dialect& dialect() const { return d_; }
  // "at byte N (path)"
  std::string where(size_t at) const;
  std::string path() const;
  [[noreturn]] void fail(size_t at, const std::string& what, ckpt_status_code code = CKPT_ERR_FORMAT) const;
  [[noreturn]] void fail(size_t at, Problem p, const Detail& d) const;

 private:
  enum class Kind : uint8_t { group, node, tensor, attrs, typed, attr_array, shape, payload };

  struct Frame {
    Kind kind;
    size_t at = 0;
    size_t index = 0;  // group/attrs/typed/attr_array: the group; node: its parent group; tensor/shape: the tensor
    size_t depth = 0;  // group nesting, the root 0
    std::string_view name{};  // group, node, tensor: its own name
    std::string_view key{};   // the key whose value comes next or is being read
    bool keyed = false;       // `key` is part of the path
    bool name_key = false;    // `key` is a group's child name
    Slot slot = Slot::key;
    uint32_t seen = 0;
    uint64_t done = 0;  // objects: keys so far; arrays: elements so far
    size_t payload_key = 0;
    TensorWork work{};
    std::unordered_set<std::string_view> names{};  // group, attrs: names taken
  };

  // An attribute value being collected: an array or a typed {"$type", "$value"}.
  struct AttrWork {
    std::string_view name{};
    size_t group = 0;
    std::string type_text;
    Elem declared = Elem::none;
    bool declared_array = false;
    bool is_array = false;
    bool has_value = false;
    Elem elem = Elem::none;
    std::vector<uint8_t> bools;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<ckpt_str> strings;
  };

  Frame& top() { return frames_.back(); }
  const Frame& top() const { return frames_.back(); }
  size_t blame(const Frame& f, const Token& t) const { return d_.blame_items ? f.at : t.at; }
  Detail detail(Slot slot) const;
  [[noreturn]] void mismatch(const Token& t) const;
  void push(Frame f);
  void pop_into_parent();
  static void value_done(Frame& f);
  std::string_view keep(std::string_view s, bool stable) { return stable ? s : text_.keep(s); }
  std::string_view keep(const Token& t) { return keep(t.text, t.stable); }

  // structure (doc_parser.cpp)
  void value(const Token& t);
  void key(const Token& t);
  void end_object(const Token& t);
  void end_array(const Token& t);
  void open_child(Frame& parent, const Token& t);
  void decide(Frame& f, const Token& first_key);
  void make_group(Frame& f, size_t at);
  void key_in_group(Frame& f, const Token& t);
  void key_in_attrs(Frame& f, const Token& t);
  void key_in_typed(Frame& f, const Token& t);
  void key_in_tensor(Frame& f, const Token& t);
  void mark(Frame& f, uint32_t bit, const Token& t, Slot slot, std::string_view shown_key);
  void check_name(const Token& t, std::string_view name, const char* what) const;
  void set_dtype(Frame& f, const Token& t);
  void add_dim(Frame& f, const Token& t);
  void finish_tensor(Frame& f, const Token& t);

  // attribute values (doc_attributes.cpp)
  void attr_scalar(const Token& t);
  void attr_start(size_t group, std::string_view name);
  void attr_set_type(const Token& t);
  void attr_start_value(const Token& t, bool array);
  void attr_element(const Token& t);
  void attr_finish_array(size_t at);
  void attr_finish_typed(const Frame& f, const Token& t);
  void attr_expect(const Token& t, Elem e);
  [[noreturn]] void attr_fail(size_t at, Problem p, Detail d) const;
  void attr_collected(bool array);
  bool into_floats() const;

  Dialect& d_;
  Tree tree_;
  TextArena text_;
  std::vector<Frame> frames_;
  AttrWork attr_;
  bool done_ = false;
};

}  // namespace ckpt_doc
