// The structure of the layout: groups, tensors and where each value goes. Attribute values are
// in doc_attributes.cpp.
#include "doc_parser.hpp"

#include "doc_keys.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

namespace ckpt_doc {
namespace {

enum Seen : uint32_t {
  seen_format = 1u << 0,
  seen_version = 1u << 1,
  seen_attrs = 1u << 2,
  seen_dtype = 1u << 3,
  seen_shape = 1u << 4,
  seen_type = 1u << 5,
  seen_value = 1u << 6,
  seen_payload = 1u << 8,  // shifted by the payload key's index
};

std::string nest_message() {
  return "groups nest deeper than " + std::to_string(kMaxGroupDepth) + " levels";
}

}  // namespace

// ---- messages --------------------------------------------------------------------------------

std::string LayoutParser::path() const {
  std::string s;
  for (const Frame& f : frames_) {
    const bool array = f.kind == Kind::attr_array || f.kind == Kind::shape || f.kind == Kind::payload;
    // Short paths name a child once it is open: a child that is not an object is its group's
    // error.
    const bool opened = &f != &frames_.back();
    if (d_.full_paths && array) {
      s += "[" + std::to_string(f.done) + "]";
    } else if (f.keyed && (d_.full_paths || (f.name_key && opened))) {
      if (!s.empty()) s += '/';
      append_escaped(s, f.key);
    }
  }
  if (s.empty()) return std::string(d_.root_path());
  // Deeply nested (hostile) files would otherwise make one-line messages kilobytes long.
  constexpr size_t keep = 96;
  if (s.size() > 2 * keep + 5) {
    // Cut on character boundaries: escaping left only well-formed UTF-8.
    size_t head = keep, tail = s.size() - keep;
    auto inside = [&](size_t i) { return (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80; };
    while (head > 0 && inside(head)) --head;
    while (tail < s.size() && inside(tail)) ++tail;
    s = s.substr(0, head) + " ... " + s.substr(tail);
  }
  return s;
}

std::string LayoutParser::where(size_t at) const {
  return "at byte " + std::to_string(at) + " (" + path() + ")";
}

void LayoutParser::fail(size_t at, const std::string& what, ckpt_status_code code) const {
  ckpt::sdk::fail(code, where(at) + ": " + what);
}

void LayoutParser::fail(size_t at, Problem p, const Detail& d) const { fail(at, d_.say(p, d), d_.code(p, d)); }

Detail LayoutParser::detail(Slot slot) const {
  Detail d;
  d.slot = slot;
  d.attribute = attr_.name;
  d.type_text = attr_.type_text;
  if (!frames_.empty()) {
    const Frame& f = top();
    d.text = f.key;
    if (f.kind == Kind::tensor || f.kind == Kind::shape || f.kind == Kind::payload) {
      d.dtype = tree_.tensors[f.index].dtype;
      d.payload_key = f.payload_key;
    }
  }
  return d;
}

void LayoutParser::mismatch(const Token& t) const {
  const Slot slot = frames_.empty() ? Slot::document : top().slot;
  fail(t.at, d_.mismatch(slot, detail(slot), d_.found(t)));
}

void LayoutParser::not_a_key(const Token& t) const { mismatch(t); }

// ---- the token stream -------------------------------------------------------------------------

void LayoutParser::token(const Token& t) {
  switch (t.kind) {
    case TokenKind::key: return key(t);
    case TokenKind::end_object: return end_object(t);
    case TokenKind::end_array: return end_array(t);
    default: return value(t);
  }
}

Tree LayoutParser::take(size_t at) {
  if (!done_) fail(at, "the document ends before its top-level object closes");
  return std::move(tree_);
}

void LayoutParser::push(Frame f) { frames_.push_back(std::move(f)); }

void LayoutParser::value_done(Frame& f) {
  f.slot = Slot::key;
  f.keyed = false;
}

void LayoutParser::pop_into_parent() {
  frames_.pop_back();
  if (!frames_.empty()) value_done(top());
}

void LayoutParser::value(const Token& t) {
  if (frames_.empty()) {
    if (t.kind != TokenKind::begin_object || done_) mismatch(t);
    push(Frame{.kind = Kind::group, .at = t.at});  // the tree's root, groups[0]
    return;
  }
  Frame& f = top();
  switch (f.slot) {
    case Slot::format:
      if (t.kind != TokenKind::string) mismatch(t);
      if (t.text != d_.format_name) {
        Detail d = detail(Slot::format);
        d.text = t.text;
        fail(t.at, Problem::format_value, d);
      }
      return value_done(f);
    case Slot::version:
      if (t.kind == TokenKind::big_integer) {
        Detail d = detail(Slot::version);
        d.u = t.u;
        fail(t.at, Problem::int_too_large, d);
      }
      if (t.kind != TokenKind::integer) mismatch(t);
      if (t.i != kVersion) {
        Detail d = detail(Slot::version);
        d.n = t.i;
        fail(t.at, d_.say(Problem::version, d), t.i > kVersion ? CKPT_ERR_UNSUPPORTED : CKPT_ERR_FORMAT);
      }
      return value_done(f);
    case Slot::attrs:
      if (t.kind != TokenKind::begin_object) mismatch(t);
      return push(Frame{.kind = Kind::attrs, .at = t.at, .index = f.index});
    case Slot::child:
      if (t.kind != TokenKind::begin_object) mismatch(t);
      return open_child(f, t);
    case Slot::attr:
      if (t.kind == TokenKind::begin_array) {
        attr_.is_array = true;
        return push(Frame{.kind = Kind::attr_array, .at = t.at, .index = f.index, .slot = Slot::attr_item});
      }
      if (t.kind == TokenKind::begin_object) return push(Frame{.kind = Kind::typed, .at = t.at, .index = f.index});
      attr_scalar(t);
      return value_done(f);
    case Slot::attr_item:
    case Slot::value_item:
      attr_element(t);
      ++f.done;
      return;
    case Slot::type:
      if (t.kind != TokenKind::string) mismatch(t);
      attr_set_type(t);
      return value_done(f);
    case Slot::value:
      if (t.kind == TokenKind::begin_array) {
        attr_start_value(t, true);
        return push(Frame{.kind = Kind::attr_array, .at = t.at, .index = f.index, .slot = Slot::value_item});
      }
      if (!d_.typed_scalars || t.kind == TokenKind::begin_object || t.kind == TokenKind::null ||
          t.kind == TokenKind::binary || t.kind == TokenKind::other)
        mismatch(t);
      attr_start_value(t, false);
      attr_element(t);
      return value_done(f);
    case Slot::dtype:
      if (t.kind != TokenKind::string) mismatch(t);
      set_dtype(f, t);
      return value_done(f);
    case Slot::shape:
      if (t.kind != TokenKind::begin_array) mismatch(t);
      f.work.shape_at = t.at;
      return push(Frame{.kind = Kind::shape, .at = t.at, .index = f.index, .slot = Slot::dim});
    case Slot::dim:
      add_dim(f, t);
      ++f.done;
      return;
    case Slot::payload: {
      const size_t key = f.payload_key;
      if (t.kind == TokenKind::begin_object || !d_.payload_value(*this, f.work, key, t)) mismatch(t);
      if (t.kind == TokenKind::begin_array)
        return push(Frame{.kind = Kind::payload, .at = t.at, .index = f.index, .slot = Slot::payload_item,
                          .payload_key = key});
      return value_done(f);
    }
    case Slot::payload_item: {
      Frame& tensor = frames_[frames_.size() - 2];
      if (!d_.payload_element(*this, tensor.work, t)) mismatch(t);
      ++top().done;
      return;
    }
    case Slot::key:
    case Slot::document:
      break;
  }
  fail(t.at, "internal: a value where a key belongs", CKPT_ERR_INTERNAL);
}

void LayoutParser::key(const Token& t) {
  Frame& f = top();
  if (f.kind == Kind::node) decide(f, t);
  switch (f.kind) {
    case Kind::group: key_in_group(f, t); break;
    case Kind::attrs: key_in_attrs(f, t); break;
    case Kind::typed: key_in_typed(f, t); break;
    case Kind::tensor: key_in_tensor(f, t); break;
    default: fail(t.at, "internal: a key outside an object", CKPT_ERR_INTERNAL);
  }
  ++f.done;
}

void LayoutParser::end_object(const Token& t) {
  Frame& f = top();
  switch (f.kind) {
    case Kind::node:  // {} holds no tensor key, so it is an empty group
      make_group(f, blame(f, t));
      break;
    case Kind::group:
      if (frames_.size() == 1) {
        if (!(f.seen & seen_format)) fail(blame(f, t), Problem::no_format, detail(Slot::key));
        if (!(f.seen & seen_version)) fail(blame(f, t), Problem::no_version, detail(Slot::key));
        done_ = true;
      }
      break;
    case Kind::typed:
      attr_finish_typed(f, t);
      break;
    case Kind::tensor:
      finish_tensor(f, t);
      break;
    default:
      break;
  }
  pop_into_parent();
}

void LayoutParser::end_array(const Token& t) {
  const bool plain_attribute = top().kind == Kind::attr_array && top().slot == Slot::attr_item;
  const size_t at = blame(top(), t);
  // Popped first: the array's own element index is no part of the path any more.
  frames_.pop_back();
  if (plain_attribute) attr_finish_array(at);
  if (!frames_.empty()) value_done(top());
}

// ---- groups ----------------------------------------------------------------------------------

void LayoutParser::open_child(Frame& parent, const Token& t) {
  const size_t depth = parent.depth + 1;
  // A child may still become a tensor one level below the deepest group; anything deeper is
  // refused before it costs memory.
  if (depth > kMaxGroupDepth + 1) fail(t.at, nest_message(), CKPT_ERR_LIMIT);
  push(Frame{.kind = Kind::node, .at = t.at, .index = parent.index, .depth = depth, .name = parent.key});
}

// A child object is a tensor when its first key is a tensor key, else a group.
void LayoutParser::decide(Frame& f, const Token& first_key) {
  const std::string_view k = first_key.text;
  bool tensor = k == kDtypeKey || k == kShapeKey;
  for (std::string_view p : d_.payload_keys) tensor = tensor || k == p;
  if (!tensor) return make_group(f, blame(f, first_key));
  Tree::Tensor made;
  made.name = f.name;
  made.id = tree_.tensors.size();
  const size_t id = tree_.add_tensor(f.index, std::move(made));
  f.kind = Kind::tensor;
  f.index = id;
  f.work.index = id;
  f.work.at = f.at;
}

void LayoutParser::make_group(Frame& f, size_t at) {
  if (f.depth > kMaxGroupDepth) fail(at, nest_message(), CKPT_ERR_LIMIT);
  f.kind = Kind::group;
  f.index = tree_.add_group(f.index, f.name);
}

void LayoutParser::mark(Frame& f, uint32_t bit, const Token& t, Slot slot, std::string_view shown_key) {
  if (f.seen & bit) fail(t.at, "duplicate key " + d_.quote(t.text));
  f.seen |= bit;
  f.slot = slot;
  f.key = shown_key;
  f.keyed = true;
  f.name_key = false;
}

void LayoutParser::check_name(const Token& t, std::string_view name, const char* what) const {
  Detail d = detail(Slot::key);
  d.text = name;
  d.what = what;
  const std::optional<NameFault> fault = name_fault(name);
  if (!fault) return;
  d.fault = *fault;
  fail(t.at, Problem::bad_name, d);
}

void LayoutParser::key_in_group(Frame& f, const Token& t) {
  const std::string_view k = t.text;
  const bool root = frames_.size() == 1;
  if (root && d_.format_first && f.done == 0 && k != kFormatKey) {
    Detail d = detail(Slot::key);
    d.text = k;
    fail(t.at, Problem::format_not_first, d);
  }
  if (is_reserved_key(k)) {
    if (k == kAttrsKey) return mark(f, seen_attrs, t, Slot::attrs, kAttrsKey);
    if (root && k == kFormatKey) return mark(f, seen_format, t, Slot::format, kFormatKey);
    if (root && k == kVersionKey) return mark(f, seen_version, t, Slot::version, kVersionKey);
    Detail d = detail(Slot::key);
    d.text = k;
    fail(t.at, Problem::reserved_in_group, d);
  }
  std::string_view name = key_to_name(k);
  check_name(t, name, "child");
  name = keep(name, t.stable);
  if (!f.names.insert(name).second) fail(t.at, "duplicate child name " + d_.quote(name));
  f.key = name;
  f.keyed = true;
  f.name_key = true;
  f.slot = Slot::child;
}

void LayoutParser::key_in_attrs(Frame& f, const Token& t) {
  const std::string_view k = t.text;
  if (is_reserved_key(k)) {
    Detail d = detail(Slot::key);
    d.text = k;
    fail(t.at, Problem::reserved_in_attrs, d);
  }
  std::string_view name = key_to_name(k);
  check_name(t, name, "attribute");
  name = keep(name, t.stable);
  if (!f.names.insert(name).second) fail(t.at, "duplicate attribute name " + d_.quote(name));
  attr_start(f.index, name);
  f.key = name;
  f.keyed = true;
  f.name_key = false;
  f.slot = Slot::attr;
}

void LayoutParser::key_in_typed(Frame& f, const Token& t) {
  if (t.text == kTypeKey) return mark(f, seen_type, t, Slot::type, kTypeKey);
  if (t.text == kValueKey) return mark(f, seen_value, t, Slot::value, kValueKey);
  Detail d = detail(Slot::key);
  d.text = t.text;
  fail(t.at, Problem::typed_key, d);
}

// ---- tensors ---------------------------------------------------------------------------------

void LayoutParser::key_in_tensor(Frame& f, const Token& t) {
  const std::string_view k = t.text;
  if (k == kDtypeKey) return mark(f, seen_dtype, t, Slot::dtype, kDtypeKey);
  if (k == kShapeKey) return mark(f, seen_shape, t, Slot::shape, kShapeKey);
  for (size_t i = 0; i < d_.payload_keys.size(); ++i) {
    if (k != d_.payload_keys[i]) continue;
    mark(f, seen_payload << i, t, Slot::payload, d_.payload_keys[i]);
    f.payload_key = i;
    f.work.payload_seen |= 1u << i;
    return;
  }
  Detail d = detail(Slot::key);
  d.text = k;
  fail(t.at, Problem::tensor_key, d);
}

void LayoutParser::set_dtype(Frame& f, const Token& t) {
  const uint32_t dtype = ckpt::sdk::dtype_from_name(t.text);
  if (dtype == 0) {
    Detail d = detail(Slot::dtype);
    d.text = t.text;
    fail(t.at, Problem::unknown_dtype, d);
  }
  tree_.tensors[f.index].dtype = dtype;
}

void LayoutParser::add_dim(Frame& f, const Token& t) {
  if (t.kind == TokenKind::big_integer) {
    Detail d = detail(Slot::dim);
    d.u = t.u;
    fail(t.at, Problem::int_too_large, d);
  }
  if (t.kind != TokenKind::integer) mismatch(t);
  if (t.i < 0) fail(t.at, "$shape has a negative dimension " + std::to_string(t.i));
  auto& shape = tree_.tensors[f.index].shape;
  if (d_.max_rank && shape.size() >= d_.max_rank)
    fail(t.at, "$shape has more than " + std::to_string(d_.max_rank) + " dimensions", CKPT_ERR_LIMIT);
  shape.push_back(t.i);
}

void LayoutParser::finish_tensor(Frame& f, const Token& t) {
  f.work.end_at = t.at;
  const size_t at = blame(f, t);
  if (!(f.seen & seen_dtype)) fail(at, "tensor has no $dtype");
  if (!(f.seen & seen_shape)) fail(at, "tensor has no $shape");
  d_.payload_keys_present(*this, f.work);
  Tree::Tensor& tensor = tree_.tensors[f.index];
  const size_t shape_at = d_.blame_items ? f.work.shape_at : t.at;
  tensor.nbytes = ckpt::sdk::checked_nbytes(tensor.shape, ckpt::sdk::dtype_size(tensor.dtype), where(shape_at));
  d_.payload_finish(*this, f.work, tensor);
}

}  // namespace ckpt_doc
