// Builds the Tree in one pass of msgpack-cxx's visitor parser over the mapped file. The
// parser never copies str or bin payloads and never allocates from a declared count (only
// per nesting level, which the visitor caps), so a hostile header cannot make it allocate.
//
// msgpack-cxx tells a visitor values but not where they are. Errors must name byte offsets,
// so the visitor keeps its own cursor: every value callback corresponds to exactly one item
// starting at the cursor, whose length follows from its type byte (checked against the
// payload pointers the parser hands over).
#include "msgpack_layout.hpp"
#include "msgpack_tree.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

// parse.hpp needs the unpacker's definitions of its helper templates.
#include <msgpack/unpack.hpp>
#include <msgpack/parse.hpp>

#include <cstdio>
#include <string>
#include <unordered_set>

namespace ckpt_msgpack {

ckpt_value AttributeEntry::view() const {
  switch (type) {
    case CKPT_VALUE_BOOL: return ckpt::sdk::make_bool(b);
    case CKPT_VALUE_INT64: return ckpt::sdk::make_int(i);
    case CKPT_VALUE_FLOAT64: return ckpt::sdk::make_float(f);
    case CKPT_VALUE_STRING: return ckpt::sdk::make_string(s);
    case CKPT_VALUE_BOOL_ARRAY: return ckpt::sdk::make_bools(bools);
    case CKPT_VALUE_INT64_ARRAY: return ckpt::sdk::make_ints(ints);
    case CKPT_VALUE_FLOAT64_ARRAY: return ckpt::sdk::make_floats(floats);
    case CKPT_VALUE_STRING_ARRAY: return ckpt::sdk::make_strings(strings);
    default: ckpt::sdk::fail(CKPT_ERR_INTERNAL, "attribute with no type");
  }
}

namespace {

using ckpt::sdk::fail;

// Bytes before the payload (or the whole item for scalars), by type byte.
size_t header_size(uint8_t tag) {
  if (tag <= 0xbf || tag >= 0xe0) return 1;  // fixint, fixmap, fixarray, fixstr
  switch (tag) {
    case 0xc4: case 0xc7: case 0xcc: case 0xd0: case 0xd9: return 2;
    case 0xc5: case 0xc8: case 0xcd: case 0xd1: case 0xda: case 0xdc: case 0xde: return 3;
    case 0xc6: case 0xc9: case 0xca: case 0xce: case 0xd2: case 0xdb: case 0xdd: case 0xdf:
      return 5;
    case 0xcb: case 0xcf: case 0xd3: return 9;
    default: return 1;  // nil, bool, fixext (whose type byte counts as payload), 0xc1
  }
}

const char* kind_of_tag(uint8_t tag) {
  if (tag <= 0x7f || tag >= 0xe0) return "int";
  if (tag <= 0x8f) return "map";
  if (tag <= 0x9f) return "array";
  if (tag <= 0xbf) return "str";
  switch (tag) {
    case 0xc4: case 0xc5: case 0xc6: return "bin";
    case 0xd9: case 0xda: case 0xdb: return "str";
    case 0xdc: case 0xdd: return "array";
    case 0xde: case 0xdf: return "map";
    case 0xc7: case 0xc8: case 0xc9: return "ext";
    default: return "value";
  }
}

// A string as it may appear in a message: bounded, control bytes escaped.
std::string quoted(std::string_view s) {
  const bool utf8 = ckpt::sdk::valid_utf8(s);
  std::string out = "\"";
  const size_t limit = 64;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (c >= 0x80 && !utf8)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out + "\"";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// A key with one '$' but not two is reserved for the layout.
bool is_reserved(std::string_view key) {
  return !key.empty() && key[0] == '$' && (key.size() < 2 || key[1] != '$');
}
std::string_view unescape(std::string_view key) {
  return key.size() >= 2 && key[0] == '$' && key[1] == '$' ? key.substr(1) : key;
}

const char* element_name(uint32_t array_type) {
  switch (array_type) {
    case CKPT_VALUE_BOOL_ARRAY: return "bool";
    case CKPT_VALUE_INT64_ARRAY: return "int";
    case CKPT_VALUE_FLOAT64_ARRAY: return "float";
    case CKPT_VALUE_STRING_ARRAY: return "str";
    default: return "nothing";
  }
}

// What the next item is for; set when a key or array item starts.
enum class Slot : uint8_t {
  document, group_key, format_value, version_value, attrs_value, child_value,
  attr_key, attr_value, attr_item, typed_key, typed_type, typed_value,
  tensor_key, dtype_value, shape_value, shape_item, pad_value, data_value
};

const char* expected(Slot s) {
  switch (s) {
    case Slot::document: return "the document map";
    case Slot::group_key: case Slot::attr_key: case Slot::typed_key: case Slot::tensor_key:
      return "a str key";
    case Slot::format_value: return "the str \"ckpt-msgpack\"";
    case Slot::version_value: return "the int 1";
    case Slot::attrs_value: return "a map of attributes";
    case Slot::child_value: return "a map (a tensor or a group)";
    case Slot::attr_value:
      return "an attribute value (bool, int, float64, str, array or {$type, $value} map)";
    case Slot::attr_item: return "a bool, int, float64 or str array element";
    case Slot::typed_type: return "a str naming the array type (bool[], int64[], float64[], string[])";
    case Slot::typed_value: return "an array";
    case Slot::dtype_value: return "a dtype str (f32, f64, f16, bf16, f8_e4m3fn, f8_e5m2, i8, u8, i16, u16, i32, u32, i64, u64, bool, c64, c128)";
    case Slot::shape_value: return "an array of dimensions";
    case Slot::shape_item: return "a non-negative int dimension";
    case Slot::pad_value: case Slot::data_value: return "a bin";
  }
  return "something else";
}

enum class Kind : uint8_t { group, undecided, tensor, attrs, typed, attr_array, shape };

// Reserved keys met in a map, to reject duplicates.
enum Seen : uint32_t {
  seen_format = 1, seen_version = 2, seen_attrs = 4, seen_dtype = 8, seen_shape = 16,
  seen_pad = 32, seen_data = 64, seen_type = 128, seen_value = 256
};

struct Frame {
  Kind kind;
  size_t at;          // the container's header
  uint64_t done = 0;  // entries or elements completed
  size_t group = 0;   // group/attrs/typed/attr_array: the group; undecided: the parent group
  size_t item = 0;    // tensor/shape: tensor index; attrs/typed/attr_array: attribute index
  std::string_view name{};  // undecided/group/tensor: the child's name
  std::string_view key{};   // the key whose value comes next, as shown in paths
  Slot value_slot = Slot::document;
  uint32_t seen = 0;
  uint32_t typed = 0;  // typed: the array type named by $type
  size_t shape_at = 0, data_at = 0;
  std::unordered_set<std::string_view> names{};  // group, attrs: names taken so far
};

struct Step {
  std::string_view key;
  uint64_t index;
  bool is_index;
};

class TreeBuilder {
 public:
  explicit TreeBuilder(std::span<const std::byte> file)
      : base_(reinterpret_cast<const char*>(file.data())), size_(file.size()) {}

  Tree take() { return std::move(tree_); }
  size_t cursor() const { return pos_; }

  // ---- msgpack-cxx visitor interface ----
  bool visit_nil() { mismatch(advance(0), "nil"); }

  bool visit_boolean(bool v) {
    const size_t at = advance(0);
    if (slot_ == Slot::attr_value) {
      AttributeEntry& a = attribute();
      a.type = CKPT_VALUE_BOOL;
      a.b = v;
    } else if (slot_ == Slot::attr_item) {
      element(at, CKPT_VALUE_BOOL_ARRAY).bools.push_back(v ? 1 : 0);
    } else {
      mismatch(at, "bool");
    }
    return true;
  }

  bool visit_positive_integer(uint64_t v) {
    const size_t at = advance(0);
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      if (slot_ == Slot::attr_value || slot_ == Slot::attr_item || slot_ == Slot::shape_item ||
          slot_ == Slot::version_value)
        error(at, "int " + std::to_string(v) + " does not fit in int64");
      mismatch(at, "int");
    }
    integer(at, static_cast<int64_t>(v));
    return true;
  }

  // msgpack-cxx reports every signed encoding here, including non-negative values.
  bool visit_negative_integer(int64_t v) {
    integer(advance(0), v);
    return true;
  }

  // float32 widens to float64 exactly; only other producers write it.
  bool visit_float32(float v) { return floating(advance(0), v, "float32"); }
  bool visit_float64(double v) { return floating(advance(0), v, "float64"); }

  bool visit_str(const char* p, uint32_t n) {
    const size_t at = advance(n, p);
    // The parser passes no usable pointer for an empty str; keep views non-null anyway.
    const std::string_view s = n ? std::string_view(p, n) : std::string_view("", 0);
    switch (slot_) {
      case Slot::group_key: group_key(at, s); break;
      case Slot::attr_key: attr_key(at, s); break;
      case Slot::typed_key: typed_key(at, s); break;
      case Slot::tensor_key: tensor_key(at, s); break;
      case Slot::format_value:
        if (s != kFormatValue)
          error(at, "expected $format \"ckpt-msgpack\", found " + quoted(s));
        break;
      case Slot::attr_value: {
        AttributeEntry& a = attribute();
        a.type = CKPT_VALUE_STRING;
        a.s = s;
        break;
      }
      case Slot::attr_item:
        element(at, CKPT_VALUE_STRING_ARRAY).strings.push_back({s.data(), s.size()});
        break;
      case Slot::typed_type: {
        const uint32_t t = array_type_from_name(s);
        if (!t) error(at, "expected $type bool[], int64[], float64[] or string[], found " + quoted(s));
        top().typed = t;
        break;
      }
      case Slot::dtype_value: {
        const uint32_t d = ckpt::sdk::dtype_from_name(s);
        if (!d) mismatch(at, "the str " + quoted(s));
        tree_.tensors[top().item].dtype = d;
        break;
      }
      default: mismatch(at, "str");
    }
    return true;
  }

  bool visit_bin(const char* p, uint32_t n) {
    const size_t at = advance(n, p);
    if (slot_ == Slot::data_value) {
      TensorEntry& t = tree_.tensors[top().item];
      t.offset = at + header_size(byte(at));
      t.nbytes = n;
      top().data_at = at;
    } else if (slot_ != Slot::pad_value) {
      mismatch(at, "bin");
    }
    return true;
  }

  bool visit_ext(const char*, uint32_t) { mismatch(pos_, "ext"); }

  bool start_array(uint32_t n) {
    const size_t at = advance(0);
    check_count(at, n, 1, "array", "elements");
    switch (slot_) {
      case Slot::attr_value: {
        const Frame& attrs = top();
        push({.kind = Kind::attr_array, .at = at, .group = attrs.group, .item = attrs.item});
        break;
      }
      case Slot::typed_value: {
        const Frame& typed = top();
        const uint32_t type = typed.typed;
        push({.kind = Kind::attr_array, .at = at, .group = typed.group, .item = typed.item});
        // With $type already known, elements are checked against it as they come.
        attribute().type = type;
        break;
      }
      case Slot::shape_value:
        top().shape_at = at;
        push({.kind = Kind::shape, .at = at, .item = top().item});
        break;
      default: mismatch(at, "array");
    }
    return true;
  }
  bool start_array_item() {
    Frame& f = top();
    slot_ = f.kind == Kind::shape ? Slot::shape_item : Slot::attr_item;
    path_.push_back({{}, f.done, true});
    return true;
  }
  bool end_array_item() {
    path_.pop_back();
    ++top().done;
    return true;
  }
  bool end_array() {
    const Frame& f = top();
    if (f.kind == Kind::attr_array && attribute().type == 0 &&
        frames_[frames_.size() - 2].kind != Kind::typed)
      error(f.at, "an empty array has no element type; write {\"$type\": \"int64[]\", \"$value\": []}");
    frames_.pop_back();
    return true;
  }

  bool start_map(uint32_t n) {
    const size_t at = advance(0);
    check_count(at, n, 2, "map", "entries");
    switch (slot_) {
      case Slot::document:
        tree_.groups.emplace_back();
        push({.kind = Kind::group, .at = at, .group = 0});
        break;
      case Slot::attrs_value:
        push({.kind = Kind::attrs, .at = at, .group = top().group});
        break;
      case Slot::child_value: {
        const Frame& parent = top();
        push({.kind = Kind::undecided, .at = at, .group = parent.group, .name = parent.key});
        break;
      }
      case Slot::attr_value: {
        const Frame& attrs = top();
        push({.kind = Kind::typed, .at = at, .group = attrs.group, .item = attrs.item});
        break;
      }
      default: mismatch(at, "map");
    }
    return true;
  }
  bool start_map_key() {
    switch (top().kind) {
      case Kind::group: case Kind::undecided: slot_ = Slot::group_key; break;
      case Kind::attrs: slot_ = Slot::attr_key; break;
      case Kind::typed: slot_ = Slot::typed_key; break;
      case Kind::tensor: slot_ = Slot::tensor_key; break;
      default: fail(CKPT_ERR_INTERNAL, "map key inside an array frame");
    }
    return true;
  }
  bool end_map_key() { return true; }
  bool start_map_value() {
    Frame& f = top();
    slot_ = f.value_slot;
    path_.push_back({f.key, 0, false});
    return true;
  }
  bool end_map_value() {
    path_.pop_back();
    ++top().done;
    return true;
  }
  bool end_map() {
    finish_map();
    frames_.pop_back();
    return true;
  }

  void parse_error(size_t, size_t) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", pos_ < size_ ? byte(pos_) : 0u);
    error(pos_, std::string("invalid MessagePack type byte ") + buf);
  }
  void insufficient_bytes(size_t, size_t) { error(pos_, "file truncated: " + truncation()); }

  // ---- the rest ----
  [[noreturn]] void error(size_t at, const std::string& what,
                          ckpt_status_code code = CKPT_ERR_FORMAT) const {
    fail(code, "at byte " + std::to_string(at) + " (" + path() + "): " + what);
  }

 private:
  uint8_t byte(size_t at) const { return static_cast<uint8_t>(base_[at]); }

  // Moves the cursor over the item it stands on; returns where the item starts.
  size_t advance(uint64_t payload, const char* payload_ptr = nullptr) {
    const size_t at = pos_;
    if (at >= size_) fail(CKPT_ERR_INTERNAL, "msgpack parser ran past the cursor");
    const size_t h = header_size(byte(at));
    if (payload_ptr && payload > 0 && payload_ptr != base_ + at + h)
      fail(CKPT_ERR_INTERNAL, "msgpack parser and the cursor disagree at byte " +
                                  std::to_string(at));
    pos_ = at + h + payload;
    return at;
  }

  std::string path() const {
    std::string s;
    for (const Step& step : path_) {
      if (step.is_index) {
        s += "[" + std::to_string(step.index) + "]";
      } else {
        if (!s.empty()) s += '/';
        s += step.key;
      }
    }
    if (s.empty()) return "<root>";
    // Deeply nested (hostile) files would otherwise make one-line messages kilobytes long.
    constexpr size_t keep = 96;
    if (s.size() > 2 * keep + 5) s = s.substr(0, keep) + " ... " + s.substr(s.size() - keep);
    return s;
  }

  Frame& top() { return frames_.back(); }

  void push(Frame f) {
    if (frames_.size() >= kMaxDepth)
      error(f.at, "nesting deeper than " + std::to_string(kMaxDepth) + " levels",
            CKPT_ERR_LIMIT);
    frames_.push_back(std::move(f));
  }

  // A container's items take at least `min_bytes` each, so a count beyond the bytes left is
  // a corrupt or truncated file, caught before anything is built for it.
  void check_count(size_t at, uint64_t n, uint64_t min_bytes, const char* what,
                   const char* items) const {
    const uint64_t left = size_ - pos_;
    if (n * min_bytes > left)
      error(at, std::string("file truncated or corrupt: ") + what + " declares " +
                    std::to_string(n) + " " + items + " but only " + std::to_string(left) +
                    " bytes follow");
  }

  [[noreturn]] void mismatch(size_t at, const std::string& found) const {
    error(at, std::string("expected ") + expected(slot_) + ", found " + found);
  }

  std::string truncation() const {
    if (pos_ >= size_) {
      const Frame* f = frames_.empty() ? nullptr : &frames_.back();
      std::string s = "the file ends at byte " + std::to_string(size_);
      if (f)
        s += " inside the " + std::string(kind_of_tag(byte(f->at))) + " at byte " +
             std::to_string(f->at) + " after " + std::to_string(f->done) + " complete items";
      return s;
    }
    const uint8_t tag = byte(pos_);
    const size_t h = header_size(tag);
    const size_t left = size_ - pos_;
    if (left < h)
      return std::string("the header of a ") + kind_of_tag(tag) + " needs " + std::to_string(h) +
             " bytes, " + std::to_string(left) + " remain";
    uint64_t declared = 0;
    if (tag >= 0xa0 && tag <= 0xbf) declared = tag & 0x1f;
    else if (tag >= 0xd4 && tag <= 0xd8) declared = (1u << (tag - 0xd4)) + 1;
    else
      for (size_t k = 1; k < h; ++k) declared = (declared << 8) | byte(pos_ + k);
    if (tag >= 0xc7 && tag <= 0xc9) declared += 1;  // ext's type byte
    return std::string("a ") + kind_of_tag(tag) + " declares " + std::to_string(declared) +
           " bytes but only " + std::to_string(left - h) + " remain";
  }

  AttributeEntry& attribute() {
    const Frame& f = top();
    return tree_.groups[f.group].attributes[f.item];
  }

  // The attribute an array element goes into, after checking the element's type.
  AttributeEntry& element(size_t at, uint32_t array_type) {
    AttributeEntry& a = attribute();
    if (a.type == 0) a.type = array_type;
    if (a.type != array_type)
      error(at, std::string("array element is ") + element_name(array_type) +
                    " but the array holds " + element_name(a.type) +
                    " (arrays hold one type)");
    return a;
  }

  void integer(size_t at, int64_t v) {
    switch (slot_) {
      case Slot::version_value:
        if (v > static_cast<int64_t>(kVersion))
          error(at, "ckpt-msgpack version " + std::to_string(v) + " is newer than this reader (" +
                        std::to_string(kVersion) + ")",
                CKPT_ERR_UNSUPPORTED);
        if (v != static_cast<int64_t>(kVersion))
          error(at, "expected $version 1, found " + std::to_string(v));
        break;
      case Slot::attr_value: {
        AttributeEntry& a = attribute();
        a.type = CKPT_VALUE_INT64;
        a.i = v;
        break;
      }
      case Slot::attr_item: element(at, CKPT_VALUE_INT64_ARRAY).ints.push_back(v); break;
      case Slot::shape_item:
        if (v < 0) error(at, "negative dimension " + std::to_string(v));
        tree_.tensors[top().item].shape.push_back(v);
        break;
      default: mismatch(at, "int");
    }
  }

  bool floating(size_t at, double v, const char* found) {
    if (slot_ == Slot::attr_value) {
      AttributeEntry& a = attribute();
      a.type = CKPT_VALUE_FLOAT64;
      a.f = v;
    } else if (slot_ == Slot::attr_item) {
      element(at, CKPT_VALUE_FLOAT64_ARRAY).floats.push_back(v);
    } else {
      mismatch(at, found);
    }
    return true;
  }

  void check_name(size_t at, std::string_view name, const char* what) const {
    std::string problem;
    if (name.empty()) problem = "is empty";
    else if (name.find('/') != std::string_view::npos) problem = "holds '/'";
    else if (name.find('\0') != std::string_view::npos) problem = "holds a NUL byte";
    else if (!ckpt::sdk::valid_utf8(name)) problem = "is not valid UTF-8";
    if (!problem.empty()) error(at, std::string(what) + " name " + quoted(name) + " " + problem);
  }

  void take_reserved(size_t at, Frame& f, Seen bit, std::string_view key, Slot slot) {
    if (f.seen & bit) error(at, "duplicate key " + quoted(key));
    f.seen |= bit;
    f.key = key;
    f.value_slot = slot;
  }

  // The first key of a child map says whether it is a tensor or a group.
  void decide(std::string_view first_key) {
    Frame& f = top();
    const bool tensor = first_key == kDtypeKey || first_key == kShapeKey ||
                        first_key == kPadKey || first_key == kDataKey;
    if (tensor) {
      tree_.tensors.push_back({.name = f.name});
      f.kind = Kind::tensor;
      f.item = tree_.tensors.size() - 1;
      tree_.groups[f.group].children.push_back({true, f.item});
    } else {
      tree_.groups.push_back({.name = f.name});
      const size_t parent = f.group;
      f.kind = Kind::group;
      f.group = tree_.groups.size() - 1;
      tree_.groups[parent].children.push_back({false, f.group});
    }
  }

  void group_key(size_t at, std::string_view key) {
    if (top().kind == Kind::undecided) decide(key);
    if (top().kind == Kind::tensor) return tensor_key(at, key);
    Frame& g = top();
    const bool root = frames_.size() == 1;
    if (root && g.done == 0 && key != kFormatKey)
      error(at, "expected the first key of the document to be \"$format\", found " + quoted(key));
    if (is_reserved(key)) {
      if (root && key == kFormatKey) return take_reserved(at, g, seen_format, key, Slot::format_value);
      if (root && key == kVersionKey)
        return take_reserved(at, g, seen_version, key, Slot::version_value);
      if (key == kAttrsKey) return take_reserved(at, g, seen_attrs, key, Slot::attrs_value);
      if (key == kDtypeKey || key == kShapeKey || key == kPadKey || key == kDataKey)
        error(at, "tensor key " + quoted(key) + " in a group (a tensor's first key must be one "
                  "of $dtype, $shape, $pad, $data)");
      error(at, "unknown reserved key " + quoted(key) +
                    " (names starting with '$' are written with one more '$')");
    }
    const std::string_view name = unescape(key);
    check_name(at, name, "child");
    if (!g.names.insert(name).second) error(at, "duplicate child name " + quoted(name));
    g.key = name;
    g.value_slot = Slot::child_value;
  }

  void attr_key(size_t at, std::string_view key) {
    Frame& f = top();
    if (is_reserved(key))
      error(at, "unknown reserved key " + quoted(key) +
                    " in $attrs (names starting with '$' are written with one more '$')");
    const std::string_view name = unescape(key);
    check_name(at, name, "attribute");
    if (!f.names.insert(name).second) error(at, "duplicate attribute name " + quoted(name));
    auto& attributes = tree_.groups[f.group].attributes;
    attributes.push_back({.name = name});
    f.item = attributes.size() - 1;
    f.key = name;
    f.value_slot = Slot::attr_value;
  }

  void typed_key(size_t at, std::string_view key) {
    Frame& f = top();
    if (key == kTypeKey) return take_reserved(at, f, seen_type, key, Slot::typed_type);
    if (key == kValueKey) return take_reserved(at, f, seen_value, key, Slot::typed_value);
    error(at, "unexpected key " + quoted(key) + " in a typed array (expected $type, $value)");
  }

  void tensor_key(size_t at, std::string_view key) {
    Frame& f = top();
    if (key == kDtypeKey) return take_reserved(at, f, seen_dtype, key, Slot::dtype_value);
    if (key == kShapeKey) return take_reserved(at, f, seen_shape, key, Slot::shape_value);
    if (key == kPadKey) return take_reserved(at, f, seen_pad, key, Slot::pad_value);
    if (key == kDataKey) return take_reserved(at, f, seen_data, key, Slot::data_value);
    error(at, "unexpected key " + quoted(key) + " in a tensor (expected $dtype, $shape, $pad, $data)");
  }

  void finish_map() {
    Frame& f = top();
    switch (f.kind) {
      case Kind::group:
        if (frames_.size() == 1) {
          if (!(f.seen & seen_format)) error(f.at, "the document has no $format");
          if (!(f.seen & seen_version)) error(f.at, "the document has no $version");
        }
        break;
      case Kind::undecided:  // {}: an empty group
        tree_.groups.push_back({.name = f.name});
        tree_.groups[f.group].children.push_back({false, tree_.groups.size() - 1});
        break;
      case Kind::tensor: finish_tensor(f); break;
      case Kind::typed: {
        if (!(f.seen & seen_type)) error(f.at, "typed array has no $type");
        if (!(f.seen & seen_value)) error(f.at, "typed array has no $value");
        AttributeEntry& a = attribute();
        if (a.type == 0) a.type = f.typed;
        if (a.type != f.typed)
          error(f.at, std::string("$value holds ") + element_name(a.type) + " but $type says " +
                          array_type_name(f.typed));
        break;
      }
      default: break;
    }
  }

  void finish_tensor(const Frame& f) {
    for (auto [bit, key] : {std::pair{seen_dtype, kDtypeKey}, std::pair{seen_shape, kShapeKey},
                            std::pair{seen_data, kDataKey}})
      if (!(f.seen & bit)) error(f.at, "tensor has no " + std::string(key));
    const TensorEntry& t = tree_.tensors[f.item];
    const std::string where = "at byte " + std::to_string(f.shape_at) + " (" + path() + ")";
    const uint64_t need =
        ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), where);
    if (t.nbytes != need)
      error(f.data_at, "$data has " + std::to_string(t.nbytes) + " bytes, shape " +
                           shape_text(t.shape) + " " + ckpt::sdk::dtype_name(t.dtype) +
                           " needs " + std::to_string(need));
  }

  const char* base_;
  size_t size_;
  size_t pos_ = 0;
  Slot slot_ = Slot::document;
  std::vector<Frame> frames_;
  std::vector<Step> path_;
  Tree tree_;
};

}  // namespace

Tree parse_tree(std::span<const std::byte> file) {
  if (file.empty())
    fail(CKPT_ERR_FORMAT, "at byte 0 (<root>): the file is empty, expected a MessagePack map");
  TreeBuilder builder(file);
  size_t off = 0;
  // Every failure throws from inside the visitor; a false return would be a parser state we
  // did not foresee.
  if (!msgpack::parse(reinterpret_cast<const char*>(file.data()), file.size(), off, builder))
    builder.error(builder.cursor(), "MessagePack parser stopped unexpectedly");
  if (off != file.size())
    builder.error(off, std::to_string(file.size() - off) +
                           " bytes of trailing data after the document (it ends at byte " +
                           std::to_string(off) + ")");
  return builder.take();
}

}  // namespace ckpt_msgpack
