#include "json_parser.hpp"

#include "attribute_collector.hpp"
#include "base64.hpp"
#include "input_cursor.hpp"
#include "json_numbers.hpp"
#include "json_strings.hpp"
#include "layout.hpp"

#include <ckpt/sdk.hpp>

#include <nlohmann/json.hpp>

#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <utility>

namespace ckpt::jsonfmt {
namespace {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are stored little-endian and copied as they are");

using json = nlohmann::json;

// A rank beyond this is surely a corrupt file, not a tensor.
constexpr size_t kMaxRank = 1024;

enum class Kind : uint8_t { group, node, attrs, attr_array, wrapper, wrapper_array, tensor, shape, values };

// What the value after the last key of an object fills.
enum class Slot : uint8_t { none, format, version, attrs, child, attr, type, value, dtype, shape, data, values };

enum Seen : uint32_t {
  kSeenFormat = 1u << 0,
  kSeenVersion = 1u << 1,
  kSeenAttrs = 1u << 2,
  kSeenDtype = 1u << 3,
  kSeenShape = 1u << 4,
  kSeenData = 1u << 5,
  kSeenValues = 1u << 6,
  kSeenType = 1u << 7,
  kSeenValue = 1u << 8,
};

struct Frame {
  explicit Frame(Kind k, size_t i = 0) : kind(k), index(i) {}
  Kind kind;
  size_t index = 0;  // groups/tensors index; a node's parent group
  size_t depth = 0;  // group nesting, root 0
  std::string name;  // the group's, node's or tensor's own name
  Slot slot = Slot::none;
  std::string pending;                    // group: the child the next value is
  std::unordered_set<std::string> names;  // group: children seen; attrs: attributes seen
  uint32_t seen = 0;
  uint64_t count = 0;        // values: elements so far
  uint64_t data_bytes = 0;   // tensor: decoded size of $data
};

class DocumentBuilder final : public nlohmann::json_sax<json> {
 public:
  explicit DocumentBuilder(InputCursor& cursor) : cursor_(cursor) {}

  Tree take() {
    if (!done_) fail("the document ends before its top-level object closes");
    return std::move(tree_);
  }

  // For errors raised below the handler (the attribute collector): the parser state still
  // says where they happened.
  [[noreturn]] void fail_here(const std::string& what) const { fail(what); }

  // ---- nlohmann::json_sax ------------------------------------------------------------------

  bool null() override { unexpected("null"); }

  bool boolean(bool b) override {
    Frame& f = top("a boolean");
    switch (f.kind) {
      case Kind::values:
        if (tensor(f).dtype != CKPT_DTYPE_BOOL) unexpected("a boolean");
        append_element(f, uint8_t{b});
        return true;
      case Kind::attrs:
        if (f.slot != Slot::attr) break;
        f.slot = Slot::none;
        add_attr(AttrValue{b});
        return true;
      case Kind::attr_array:
      case Kind::wrapper_array:
      case Kind::wrapper:
        if (!element_frame(f)) break;
        attr_.add_bool(b);
        return true;
      default:
        break;
    }
    unexpected("a boolean");
  }

  bool number_integer(int64_t i) override {
    Frame& f = top("an integer");
    switch (f.kind) {
      case Kind::values:
        append_integer(f, i);
        return true;
      case Kind::shape:
        add_dim(f, i);
        return true;
      case Kind::group:
        if (f.slot != Slot::version) break;
        if (i != kVersion)
          fail("$version is " + std::to_string(i) + ", this reader knows version " + std::to_string(kVersion),
               i > kVersion ? CKPT_ERR_UNSUPPORTED : CKPT_ERR_FORMAT);
        f.slot = Slot::none;
        return true;
      case Kind::attrs:
        if (f.slot != Slot::attr) break;
        f.slot = Slot::none;
        add_attr(AttrValue{i});
        return true;
      case Kind::attr_array:
      case Kind::wrapper_array:
      case Kind::wrapper:
        if (!element_frame(f)) break;
        attr_.add_int(i);
        return true;
      default:
        break;
    }
    unexpected("an integer");
  }

  bool number_unsigned(uint64_t u) override {
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return number_integer(static_cast<int64_t>(u));
    Frame& f = top("an integer");
    switch (f.kind) {
      case Kind::values:
        append_unsigned(f, u);
        return true;
      case Kind::shape:
        fail("$shape: dimension " + std::to_string(u) + " is too large", CKPT_ERR_LIMIT);
      case Kind::attrs:
        if (f.slot != Slot::attr) break;
        fail("attribute " + shown(attr_.name()) + ": " + std::to_string(u) + " is outside the int64 range");
      case Kind::attr_array:
      case Kind::wrapper_array:
      case Kind::wrapper:
        if (!element_frame(f)) break;
        attr_.add_unsigned(u);
        return true;
      default:
        break;
    }
    unexpected("an integer");
  }

  bool number_float(double, const std::string& text) override {
    Frame& f = top("a number");
    // An integer literal reaches here only when it overflows 64 bits: Python reads it as an
    // exact int, a float64 would be another value.
    if (f.kind != Kind::values && text.find_first_of(".eE") == std::string::npos)
      fail("the integer " + text.substr(0, 40) + " is outside the 64-bit range");
    switch (f.kind) {
      case Kind::values:
        append_float_text(f, text);
        return true;
      case Kind::attrs:
        if (f.slot != Slot::attr) break;
        f.slot = Slot::none;
        add_attr(AttrValue{parse_double(text)});
        return true;
      case Kind::attr_array:
      case Kind::wrapper_array:
      case Kind::wrapper:
        if (!element_frame(f)) break;
        attr_.add_float(parse_double(text));
        return true;
      default:
        break;
    }
    unexpected("a number with a fraction or exponent");
  }

  bool string(std::string& lexed) override {
    std::string_view s = cursor_.take_string(lexed);
    Frame& f = top("a string");
    switch (f.kind) {
      case Kind::values:
        append_token(f, s);
        return true;
      case Kind::group:
        if (f.slot != Slot::format) break;
        if (s != kFormatName)
          fail("$format is " + shown(s) + ", expected '" + std::string(kFormatName) + "'");
        f.slot = Slot::none;
        return true;
      case Kind::attrs:
        if (f.slot != Slot::attr) break;
        f.slot = Slot::none;
        add_attr(AttrValue{std::string(s)});
        return true;
      case Kind::attr_array:
      case Kind::wrapper_array:
      case Kind::wrapper:
        if (f.kind == Kind::wrapper && f.slot == Slot::type) {
          attr_.set_type(s);
          f.slot = Slot::none;
          return true;
        }
        if (!element_frame(f)) break;
        attr_.add_string(s);
        return true;
      case Kind::tensor:
        if (f.slot == Slot::dtype) {
          set_dtype(f, s);
          return true;
        }
        if (f.slot == Slot::data) {
          set_data(f, s);
          return true;
        }
        break;
      default:
        break;
    }
    unexpected("a string");
  }

  bool binary(binary_t&) override { unexpected("binary data"); }

  bool start_object(std::size_t) override {
    if (stack_.empty() && !started_) {
      started_ = true;
      tree_.groups.emplace_back();
      stack_.push_back(Frame{Kind::group});
      return true;
    }
    Frame& f = top("an object");
    if (f.kind == Kind::group && f.slot == Slot::attrs) {
      f.slot = Slot::none;
      Frame a{Kind::attrs};
      a.index = f.index;
      a.depth = f.depth;
      stack_.push_back(std::move(a));
      return true;
    }
    if (f.kind == Kind::group && f.slot == Slot::child) {
      f.slot = Slot::none;
      Frame n{Kind::node};
      n.index = f.index;
      n.depth = f.depth + 1;
      // A node may still become a tensor one level below the deepest group; anything deeper
      // is refused before it costs memory.
      if (n.depth > kMaxGroupDepth + 1)
        fail("groups nest deeper than " + std::to_string(kMaxGroupDepth), CKPT_ERR_LIMIT);
      n.name = std::move(f.pending);
      stack_.push_back(std::move(n));
      return true;
    }
    if (f.kind == Kind::attrs && f.slot == Slot::attr) {
      f.slot = Slot::none;
      stack_.push_back(Frame{Kind::wrapper});
      return true;
    }
    unexpected("an object");
  }

  bool key(std::string& lexed) override {
    std::string_view k = cursor_.take_string(lexed);
    Frame& f = stack_.back();  // nlohmann only reports keys inside an object we pushed
    if (f.kind == Kind::node) decide(f, k);
    switch (f.kind) {
      case Kind::group: key_in_group(f, k); break;
      case Kind::attrs: key_in_attrs(f, k); break;
      case Kind::wrapper: key_in_wrapper(f, k); break;
      case Kind::tensor: key_in_tensor(f, k); break;
      default: fail("internal: key in a non-object frame", CKPT_ERR_INTERNAL);
    }
    return true;
  }

  bool end_object() override {
    Frame& f = stack_.back();
    switch (f.kind) {
      case Kind::node:
        // {} holds no tensor key, so it is an empty group.
        make_group(f);
        break;
      case Kind::group:
        if (stack_.size() == 1) {
          if (!(f.seen & kSeenFormat)) fail("the top-level object has no $format");
          if (!(f.seen & kSeenVersion)) fail("the top-level object has no $version");
          done_ = true;
        }
        break;
      case Kind::wrapper:
        add_attr(attr_.finish_typed());
        break;
      case Kind::tensor:
        finish_tensor(f);
        break;
      default:
        break;
    }
    stack_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    Frame& f = top("an array");
    if (f.kind == Kind::attrs && f.slot == Slot::attr) {
      f.slot = Slot::none;
      stack_.push_back(Frame{Kind::attr_array});
      return true;
    }
    if (f.kind == Kind::wrapper && f.slot == Slot::value) {
      f.slot = Slot::none;
      attr_.start_value(true);
      stack_.push_back(Frame{Kind::wrapper_array});
      return true;
    }
    if (f.kind == Kind::tensor && f.slot == Slot::shape) {
      f.slot = Slot::none;
      Frame s{Kind::shape};
      s.index = f.index;
      stack_.push_back(std::move(s));
      return true;
    }
    if (f.kind == Kind::tensor && f.slot == Slot::values) {
      if (!(f.seen & kSeenDtype)) fail("$values comes before $dtype; write $dtype first");
      f.slot = Slot::none;
      Frame v{Kind::values};
      v.index = f.index;
      stack_.push_back(std::move(v));
      return true;
    }
    unexpected("an array");
  }

  bool end_array() override {
    Frame done = std::move(stack_.back());
    stack_.pop_back();
    if (done.kind == Kind::attr_array) add_attr(attr_.finish_array());
    if (done.kind == Kind::values) stack_.back().count = done.count;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann's message counts lines and columns with its own (skipping) view of the text; the
    // cursor knows the real byte. Keep only its description.
    std::string what = e.what();
    if (auto col = what.find("column "); col != std::string::npos) {
      if (auto colon = what.find(": ", col); colon != std::string::npos) what = what.substr(colon + 2);
    }
    if (what.size() > 300) what = what.substr(0, 300) + "...";
    // "last read" quotes raw file bytes; keep the message printable ASCII.
    std::string clean;
    for (char ch : what) {
      auto c = static_cast<unsigned char>(ch);
      if (c >= 0x20 && c < 0x7F) {
        clean.push_back(ch);
      } else {
        static constexpr char kHex[] = "0123456789abcdef";
        clean += "\\x";
        clean.push_back(kHex[c >> 4]);
        clean.push_back(kHex[c & 15]);
      }
    }
    size_t at = cursor_.offset() > 0 ? cursor_.offset() - 1 : 0;
    sdk::fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(at) + ": not valid JSON: " + clean);
  }

 private:
  // ---- errors ------------------------------------------------------------------------------

  std::string path() const {
    std::string p;
    for (const Frame& f : stack_) {
      if (f.kind != Kind::group && f.kind != Kind::node && f.kind != Kind::tensor) continue;
      if (f.name.empty()) continue;
      if (!p.empty()) p += '/';
      p += f.name;
    }
    return p.empty() ? "/" : p;
  }

  [[noreturn]] void fail(const std::string& what, ckpt_status_code code = CKPT_ERR_FORMAT) const {
    sdk::fail(code, "at byte " + std::to_string(cursor_.offset()) + " (" + path() + "): " + what);
  }

  std::string expected(const Frame& f) const {
    switch (f.kind) {
      case Kind::group:
        switch (f.slot) {
          case Slot::format: return "$format: expected the string 'ckpt-json'";
          case Slot::version: return "$version: expected the integer 1";
          case Slot::attrs: return "$attrs: expected an object of attributes";
          case Slot::child: return "child " + shown(f.pending) + ": expected an object (a group or a tensor)";
          default: return "expected a key";
        }
      case Kind::attrs:
      case Kind::attr_array:
        return "attribute " + shown(attr_.name()) +
               ": expected a boolean, number, string, array of those or {\"$type\", \"$value\"}";
      case Kind::wrapper:
        if (f.slot == Slot::type) return "attribute " + shown(attr_.name()) + ": $type: expected a string";
        return "attribute " + shown(attr_.name()) + ": $value: expected a boolean, number, string or array";
      case Kind::wrapper_array:
        return "attribute " + shown(attr_.name()) + ": $value: expected booleans, numbers or strings";
      case Kind::tensor:
        switch (f.slot) {
          case Slot::dtype: return "$dtype: expected a dtype name string";
          case Slot::shape: return "$shape: expected an array of non-negative integers";
          case Slot::data: return "$data: expected a base64 string";
          case Slot::values: return "$values: expected an array";
          default: return "expected a key";
        }
      case Kind::shape:
        return "$shape: expected non-negative integers";
      case Kind::values: {
        uint32_t d = tree_.tensors[f.index].dtype;
        const char* what = d == CKPT_DTYPE_BOOL ? "true or false"
                           : float_kind(d)      ? "numbers or \"NaN\", \"Infinity\", \"-Infinity\""
                                                : "integers";
        return std::string("$values of a ") + sdk::dtype_name(d) + " tensor: expected " + what;
      }
      case Kind::node:
        break;
    }
    return "expected something else";
  }

  [[noreturn]] void unexpected(const char* found) const {
    if (stack_.empty()) fail(std::string("the file must hold one JSON object, found ") + found);
    fail(expected(stack_.back()) + ", found " + found);
  }

  Frame& top(const char* found) {
    if (stack_.empty()) unexpected(found);
    return stack_.back();
  }

  void check_name(std::string_view name, const char* what) const {
    if (name.empty()) fail(std::string("empty ") + what + " name");
    if (name.find('/') != std::string_view::npos) fail(std::string(what) + " name " + shown(name) + " contains '/'");
    if (name.find('\0') != std::string_view::npos) fail(std::string(what) + " name " + shown(name) + " contains a NUL character");
  }

  void mark(Frame& f, uint32_t bit, std::string_view key) const {
    if (f.seen & bit) fail("duplicate key " + shown(key));
    f.seen |= bit;
  }

  // ---- groups and nodes --------------------------------------------------------------------

  // A child object is a tensor when its first key is a tensor key, else a group.
  void decide(Frame& f, std::string_view first_key) {
    if (first_key == kDtypeKey || first_key == kShapeKey || first_key == kDataKey || first_key == kValuesKey) {
      size_t id = tree_.tensors.size();
      tree_.tensors.push_back(TensorRec{f.name, 0, {}, 0, {}, {}});
      tree_.groups[f.index].children.push_back({false, id});
      f.kind = Kind::tensor;
      f.index = id;
    } else {
      make_group(f);
    }
  }

  void make_group(Frame& f) {
    if (f.depth > kMaxGroupDepth)
      fail("groups nest deeper than " + std::to_string(kMaxGroupDepth), CKPT_ERR_LIMIT);
    size_t id = tree_.groups.size();
    tree_.groups.push_back(GroupRec{f.name, {}, {}});
    tree_.groups[f.index].children.push_back({true, id});
    f.kind = Kind::group;
    f.index = id;
  }

  void key_in_group(Frame& f, std::string_view k) {
    if (is_reserved_key(k)) {
      bool root = stack_.size() == 1;
      if (k == kAttrsKey) {
        mark(f, kSeenAttrs, k);
        f.slot = Slot::attrs;
      } else if (root && k == kFormatKey) {
        mark(f, kSeenFormat, k);
        f.slot = Slot::format;
      } else if (root && k == kVersionKey) {
        mark(f, kSeenVersion, k);
        f.slot = Slot::version;
      } else {
        fail("unknown reserved key " + shown(k) + " in a group (a name starting with '$' is written as '$$...')");
      }
      return;
    }
    std::string name(key_to_name(k));
    check_name(name, "child");
    if (!f.names.insert(name).second) fail("duplicate child name " + shown(name));
    f.pending = std::move(name);
    f.slot = Slot::child;
  }

  // ---- attributes --------------------------------------------------------------------------

  void key_in_attrs(Frame& f, std::string_view k) {
    if (is_reserved_key(k))
      fail("$attrs: unexpected reserved key " + shown(k) + " (a name starting with '$' is written as '$$...')");
    std::string name(key_to_name(k));
    check_name(name, "attribute");
    if (!f.names.insert(name).second) fail("duplicate attribute name " + shown(name));
    attr_.reset(std::move(name), f.index);
    f.slot = Slot::attr;
  }

  void key_in_wrapper(Frame& f, std::string_view k) {
    if (k == kTypeKey) {
      mark(f, kSeenType, k);
      f.slot = Slot::type;
    } else if (k == kValueKey) {
      mark(f, kSeenValue, k);
      f.slot = Slot::value;
    } else {
      fail("attribute " + shown(attr_.name()) + ": unexpected key " + shown(k) +
           " in a typed value (expected $type and $value)");
    }
  }

  void add_attr(AttrValue v) {
    tree_.groups[attr_.group()].attrs.push_back(AttrRec{attr_.name(), std::move(v)});
  }

  // True when `f` takes an attribute element: inside an array, or the $value of a typed form.
  bool element_frame(Frame& f) {
    if (f.kind == Kind::attr_array || f.kind == Kind::wrapper_array) return true;
    if (f.kind != Kind::wrapper || f.slot != Slot::value) return false;
    f.slot = Slot::none;
    attr_.start_value(false);
    return true;
  }

  double parse_double(const std::string& text) const {
    uint64_t bits = 0;
    if (!parse_float_text(text, FloatKind::f64, bits)) fail("number " + shown(text) + " is out of the float64 range");
    return std::bit_cast<double>(bits);
  }

  // ---- tensors -----------------------------------------------------------------------------

  TensorRec& tensor(const Frame& f) { return tree_.tensors[f.index]; }

  // The kind of each number in $values: a complex tensor lists its components (real, imaginary,
  // real, ...), so its numbers are of the component's kind.
  static const FloatKind* float_kind(uint32_t dtype) {
    static constexpr FloatKind kinds[] = {FloatKind::f32, FloatKind::f64, FloatKind::f16, FloatKind::bf16,
                                          FloatKind::f8_e4m3fn, FloatKind::f8_e5m2};
    switch (dtype) {
      case CKPT_DTYPE_F32:
      case CKPT_DTYPE_C64: return &kinds[0];
      case CKPT_DTYPE_F64:
      case CKPT_DTYPE_C128: return &kinds[1];
      case CKPT_DTYPE_F16: return &kinds[2];
      case CKPT_DTYPE_BF16: return &kinds[3];
      case CKPT_DTYPE_F8_E4M3FN: return &kinds[4];
      case CKPT_DTYPE_F8_E5M2: return &kinds[5];
      default: return nullptr;
    }
  }

  static size_t number_size(uint32_t dtype) {
    const size_t item = sdk::dtype_size(dtype);
    return dtype == CKPT_DTYPE_C64 || dtype == CKPT_DTYPE_C128 ? item / 2 : item;
  }

  void key_in_tensor(Frame& f, std::string_view k) {
    if (k == kDtypeKey) {
      mark(f, kSeenDtype, k);
      f.slot = Slot::dtype;
    } else if (k == kShapeKey) {
      mark(f, kSeenShape, k);
      f.slot = Slot::shape;
    } else if (k == kDataKey) {
      mark(f, kSeenData, k);
      f.slot = Slot::data;
    } else if (k == kValuesKey) {
      mark(f, kSeenValues, k);
      f.slot = Slot::values;
    } else if (k == kAttrsKey) {
      fail("a tensor has no $attrs (put attributes on its group)");
    } else {
      fail("unexpected key " + shown(k) + " in a tensor (expected $dtype, $shape, $data or $values)");
    }
  }

  void set_dtype(Frame& f, std::string_view s) {
    uint32_t d = sdk::dtype_from_name(s);
    if (d == 0)
      fail("unknown $dtype " + shown(s) +
           " (expected f32, f64, f16, bf16, f8_e4m3fn, f8_e5m2, i8, u8, i16, u16, i32, u32, i64, u64, bool, c64 or c128)");
    tensor(f).dtype = d;
    f.slot = Slot::none;
  }

  void set_data(Frame& f, std::string_view s) {
    // Where the text starts: exact when it is a view into the file, else counted back from
    // the closing quote.
    size_t start = cursor_.contains(s.data()) ? cursor_.offset_of(s.data()) : cursor_.offset() - 1 - s.size();
    Base64Check c = base64_check(s);
    if (c.error)
      sdk::fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(start + c.error_offset) + " (" + path() +
                                     "): $data: " + c.error);
    TensorRec& t = tensor(f);
    if (cursor_.contains(s.data())) {
      t.base64 = s;
    } else {
      t.bytes.resize(c.decoded_size);
      base64_decode(s, t.bytes.data());
    }
    f.data_bytes = c.decoded_size;
    f.slot = Slot::none;
  }

  void add_dim(Frame& f, int64_t d) {
    if (d < 0) fail("$shape has a negative dimension " + std::to_string(d));
    auto& shape = tensor(f).shape;
    if (shape.size() >= kMaxRank) fail("$shape has more than " + std::to_string(kMaxRank) + " dimensions", CKPT_ERR_LIMIT);
    shape.push_back(d);
  }

  template <class T>
  void append_element(Frame& f, T v) {
    auto& bytes = tensor(f).bytes;
    size_t n = bytes.size();
    bytes.resize(n + sizeof(T));
    std::memcpy(bytes.data() + n, &v, sizeof(T));
    ++f.count;
  }

  void append_float_bits(Frame& f, FloatKind k, uint64_t bits) {
    switch (k) {
      case FloatKind::f8_e4m3fn:
      case FloatKind::f8_e5m2: append_element(f, static_cast<uint8_t>(bits)); break;
      case FloatKind::f16:
      case FloatKind::bf16: append_element(f, static_cast<uint16_t>(bits)); break;
      case FloatKind::f32: append_element(f, static_cast<uint32_t>(bits)); break;
      case FloatKind::f64: append_element(f, bits); break;
    }
  }

  [[noreturn]] void out_of_range(const Frame& f, const std::string& v) const {
    fail("$values: " + v + " is out of range for " + sdk::dtype_name(tree_.tensors[f.index].dtype) +
         " (element " + std::to_string(f.count) + ")");
  }

  template <class T>
  void append_ranged(Frame& f, int64_t i) {
    if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) || i > static_cast<int64_t>(std::numeric_limits<T>::max()))
      out_of_range(f, std::to_string(i));
    append_element(f, static_cast<T>(i));
  }

  void append_integer(Frame& f, int64_t i) {
    uint32_t d = tensor(f).dtype;
    if (const FloatKind* k = float_kind(d)) {
      uint64_t bits = 0;
      if (!float_bits_from_integer(*k, i, bits)) out_of_range(f, std::to_string(i));
      return append_float_bits(f, *k, bits);
    }
    switch (d) {
      case CKPT_DTYPE_I8: return append_ranged<int8_t>(f, i);
      case CKPT_DTYPE_U8: return append_ranged<uint8_t>(f, i);
      case CKPT_DTYPE_I16: return append_ranged<int16_t>(f, i);
      case CKPT_DTYPE_I32: return append_ranged<int32_t>(f, i);
      case CKPT_DTYPE_I64: return append_element(f, i);
      case CKPT_DTYPE_U16: return append_ranged<uint16_t>(f, i);
      case CKPT_DTYPE_U32: return append_ranged<uint32_t>(f, i);
      case CKPT_DTYPE_U64:
        if (i < 0) out_of_range(f, std::to_string(i));
        return append_element(f, static_cast<uint64_t>(i));
      default: unexpected("an integer");
    }
  }

  void append_unsigned(Frame& f, uint64_t u) {
    if (tensor(f).dtype == CKPT_DTYPE_U64) return append_element(f, u);
    const FloatKind* k = float_kind(tensor(f).dtype);
    uint64_t bits = 0;
    if (!k || !float_bits_from_unsigned(*k, u, bits)) out_of_range(f, std::to_string(u));
    append_float_bits(f, *k, bits);
  }

  void append_float_text(Frame& f, const std::string& text) {
    const FloatKind* k = float_kind(tensor(f).dtype);
    if (!k) unexpected("a number with a fraction or exponent");
    uint64_t bits = 0;
    if (!parse_float_text(text, *k, bits)) out_of_range(f, text);
    append_float_bits(f, *k, bits);
  }

  void append_token(Frame& f, std::string_view s) {
    const FloatKind* k = float_kind(tensor(f).dtype);
    if (!k) unexpected("a string");
    uint64_t bits = 0;
    if (!parse_nonfinite(s, *k, bits))
      fail("$values: " + shown(s) + " is not a number (strings stand for \"NaN\", \"Infinity\", \"-Infinity\", \"NaN:0x<bits>\")");
    append_float_bits(f, *k, bits);
  }

  void finish_tensor(const Frame& f) {
    TensorRec& t = tensor(f);
    if (!(f.seen & kSeenDtype)) fail("tensor has no $dtype");
    if (!(f.seen & kSeenShape)) fail("tensor has no $shape");
    bool data = f.seen & kSeenData, values = f.seen & kSeenValues;
    if (!data && !values) fail("tensor has neither $data nor $values");
    if (data && values) fail("tensor has both $data and $values");
    const size_t item = sdk::dtype_size(t.dtype), number = number_size(t.dtype);
    std::string where = "at byte " + std::to_string(cursor_.offset()) + " (" + path() + ")";
    t.nbytes = sdk::checked_nbytes(t.shape, item, where);
    auto shape_text = [&] {
      std::string s = "[";
      for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
      return s + "] " + sdk::dtype_name(t.dtype);
    };
    if (data && f.data_bytes != t.nbytes)
      fail("$data has " + std::to_string(f.data_bytes) + " bytes, shape " + shape_text() + " needs " +
           std::to_string(t.nbytes));
    if (values && f.count != t.nbytes / number)
      fail("$values has " + std::to_string(f.count) + " numbers, shape " + shape_text() + " needs " +
           std::to_string(t.nbytes / number));
  }

  InputCursor& cursor_;
  Tree tree_;
  std::vector<Frame> stack_;
  AttributeCollector attr_;
  bool started_ = false;
  bool done_ = false;
};

}  // namespace

Tree parse_document(std::string_view text) {
  // nlohmann's lexer takes a NUL byte for the end of its input, so text after one would be
  // ignored here but refused by Python's json (and any strict reader). JSON text can hold no
  // raw NUL at all (in strings it is escaped), so one anywhere is an error.
  if (const void* nul = text.empty() ? nullptr : std::memchr(text.data(), 0, text.size()))
    sdk::fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(static_cast<const char*>(nul) - text.data()) +
                                   ": a NUL byte, which JSON text cannot hold");
  InputCursor cursor(text);
  DocumentBuilder builder(cursor);
  try {
    json::sax_parse(CursorIterator(&cursor), CursorIterator(text.data() + text.size()), &builder,
                    json::input_format_t::json, /*strict=*/true, /*ignore_comments=*/false);
  } catch (const AttributeError& e) {
    builder.fail_here(e.what());
  }
  return builder.take();
}

}  // namespace ckpt::jsonfmt
