#include "st_header.hpp"

#include "st_header_fast.hpp"
#include "st_layout.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_quote.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace ckpt_safetensors {

using ckpt::sdk::fail;

std::string quote_name(std::string_view s, bool ascii) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || (ascii && u >= 0x80)) {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "'";
}

namespace {

using json = nlohmann::json;

// An input iterator over the header that publishes how far the lexer has read, so that checks
// made in SAX callbacks can say where they are (the lexer keeps its own copy of the iterator).
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator() = default;
  CountingIterator(const char* p, const char** shared) : p_(p), shared_(shared) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    if (shared_) *shared_ = p_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  friend bool operator==(const CountingIterator& a, const CountingIterator& b) { return a.p_ == b.p_; }

 private:
  const char* p_ = nullptr;
  const char** shared_ = nullptr;
};

std::string shape_text(std::span<const int64_t> shape) { return ckpt::sdk::shape_text(shape, ","); }

std::string range_text(const TensorEntry& t) {
  return "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ")";
}

// Builds the Header from SAX events. The accepted grammar is exactly the specification's:
//   { ["__metadata__": {str: str, ...},] name: {"dtype": str, "shape": [uint, ...],
//                                              "data_offsets": [uint, uint]}, ... }
class HeaderHandler final : public nlohmann::json_sax<json> {
 public:
  HeaderHandler(Header& out, const char* text, const char** pos) : out_(out), text_(text), pos_(pos) {}

  bool null() override { return wrong("null"); }
  bool boolean(bool) override { return wrong("a boolean"); }
  bool binary(binary_t&) override { return wrong("binary data"); }
  // The lexer has read one character past a number when these are called.
  bool number_float(number_float_t, const string_t& text) override {
    if (state_ == State::dims || state_ == State::offsets)
      bad(CKPT_ERR_FORMAT, element_what() + " " + text + " is not a non-negative integer", 1);
    return wrong("a number", 1);
  }
  bool number_integer(number_integer_t i) override {
    // nlohmann reports non-negative integers as unsigned: this one is negative.
    if (state_ == State::dims) bad(CKPT_ERR_FORMAT, "shape has a negative dimension " + std::to_string(i), 1);
    if (state_ == State::offsets) bad(CKPT_ERR_FORMAT, "data_offsets holds a negative offset " + std::to_string(i), 1);
    return wrong("a number", 1);
  }
  bool number_unsigned(number_unsigned_t u) override {
    if (state_ == State::dims) {
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad(CKPT_ERR_LIMIT, "shape has a dimension of " + std::to_string(u), 1);
      cur().shape.push_back(static_cast<int64_t>(u));
      return true;
    }
    if (state_ == State::offsets) {
      if (offsets_seen_ == 2) bad(CKPT_ERR_FORMAT, "data_offsets has more than two entries", 1);
      (offsets_seen_++ == 0 ? cur().begin : cur().end) = u;
      return true;
    }
    return wrong("a number", 1);
  }
  bool string(string_t& s) override {
    if (state_ == State::meta_value) {
      out_.metadata.push_back({std::move(meta_key_), std::move(s), meta_at_});
      state_ = State::meta;
      return true;
    }
    if (state_ == State::tensor_value && field_ == Field::dtype) {
      dtype_name_ = std::move(s);
      state_ = State::tensor;
      return true;
    }
    return wrong("a string");
  }
  bool start_object(std::size_t) override {
    switch (state_) {
      case State::start:
        state_ = State::root;
        return true;
      case State::root_value:
        if (key_is_metadata_) {
          out_.has_metadata = true;
          state_ = State::meta;
        } else {
          state_ = State::tensor;
          fields_seen_ = 0;
        }
        return true;
      default:
        return wrong("an object");
    }
  }
  bool key(string_t& k) override {
    const uint64_t at = here();
    switch (state_) {
      case State::root: {
        key_is_metadata_ = k == kMetadataKey;
        if (key_is_metadata_) {
          if (metadata_at_) bad(CKPT_ERR_FORMAT, "duplicate key " + quote_name(k) + " (first at byte " + std::to_string(metadata_at_) + ")");
          metadata_at_ = at;
        } else {
          // Listed at once and its fields filled in as they come: one probe of the index finds
          // a duplicate and records the key.
          TensorEntry& t = out_.tensors.emplace_back();
          t.key = std::move(k);
          t.at = at;
          if (!tensor_keys_.insert(out_.tensors.size() - 1, tensor_key())) {
            const auto first = tensor_keys_.find(t.key, tensor_key());
            bad(CKPT_ERR_FORMAT, "duplicate key " + quote_name(t.key) + " (first at byte " +
                                     std::to_string(first ? out_.tensors[*first].at : 0) + ")");
          }
        }
        state_ = State::root_value;
        return true;
      }
      case State::meta:
        if (!meta_keys_.insert(k).second) bad(CKPT_ERR_FORMAT, "duplicate __metadata__ key " + quote_name(k));
        meta_key_ = std::move(k);
        meta_at_ = at;
        state_ = State::meta_value;
        return true;
      case State::tensor: {
        Field f;
        if (k == "dtype") f = Field::dtype;
        else if (k == "shape") f = Field::shape;
        else if (k == "data_offsets") f = Field::offsets;
        else bad(CKPT_ERR_FORMAT, "unknown key " + quote_name(k) + " (a tensor has dtype, shape and data_offsets)");
        const unsigned bit = 1u << static_cast<unsigned>(f);
        if (fields_seen_ & bit) bad(CKPT_ERR_FORMAT, "duplicate key " + quote_name(k));
        fields_seen_ |= bit;
        field_ = f;
        state_ = State::tensor_value;
        return true;
      }
      default:
        return wrong("a key");
    }
  }
  bool end_object() override {
    switch (state_) {
      case State::root:
        state_ = State::done;
        return true;
      case State::meta:
        state_ = State::root;
        return true;
      case State::tensor: {
        for (auto [f, name] : {std::pair{Field::dtype, "dtype"}, std::pair{Field::shape, "shape"},
                               std::pair{Field::offsets, "data_offsets"}})
          if (!(fields_seen_ & (1u << static_cast<unsigned>(f))))
            bad(CKPT_ERR_FORMAT, std::string("missing key '") + name + "'");
        cur().dtype = dtype_of(dtype_name_);
        state_ = State::root;
        return true;
      }
      default:
        return wrong("the end of an object");
    }
  }
  bool start_array(std::size_t) override {
    if (state_ == State::tensor_value && field_ == Field::shape) {
      state_ = State::dims;
      return true;
    }
    if (state_ == State::tensor_value && field_ == Field::offsets) {
      state_ = State::offsets;
      offsets_seen_ = 0;
      return true;
    }
    return wrong("an array");
  }
  bool end_array() override {
    if (state_ == State::dims) {
      state_ = State::tensor;
      return true;
    }
    if (state_ == State::offsets) {
      if (offsets_seen_ != 2)
        bad(CKPT_ERR_FORMAT, "data_offsets has " + std::to_string(offsets_seen_) + " entries, not 2");
      state_ = State::tensor;
      return true;
    }
    return wrong("the end of an array");
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& e) override {
    // nlohmann's message starts with its id and "parse error at line 1, column N: "; the byte
    // offset below says the same, and the token may hold bytes that are not UTF-8.
    std::string what = e.what();
    if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
    if (auto last = what.find("; last read: "); last != std::string::npos) what = what.substr(0, last);
    const uint64_t at = 8 + (position > 0 ? position - 1 : 0);
    fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(at) + ": the header is not valid JSON: " + what +
                              " (near " + quote_name(last_token.substr(last_token.size() > 40 ? last_token.size() - 40 : 0), true) + ")");
  }

 private:
  enum class State { start, root, root_value, meta, meta_value, tensor, tensor_value, dims, offsets, done };
  enum class Field : unsigned { dtype, shape, offsets };

  uint64_t here() const { return 8 + static_cast<uint64_t>(*pos_ - text_); }

  std::string context() const {
    switch (state_) {
      case State::start: return "header";
      case State::root: return "header";
      case State::root_value: return key_is_metadata_ ? std::string(kMetadataKey) : "tensor " + quote_name(cur().key);
      case State::meta: return std::string(kMetadataKey);
      case State::meta_value: return std::string(kMetadataKey) + "[" + quote_name(meta_key_) + "]";
      default: return "tensor " + quote_name(cur().key);
    }
  }

  // `lookahead`: characters the lexer has read beyond the token in question.
  [[noreturn]] void bad(ckpt_status_code code, const std::string& what, uint64_t lookahead = 0) const {
    fail(code, "at byte " + std::to_string(here() - lookahead) + " (" + context() + "): " + what);
  }

  std::string element_what() const { return state_ == State::dims ? "shape dimension" : "data_offsets entry"; }

  [[noreturn]] bool wrong(const char* found, uint64_t lookahead = 0) const {
    std::string expected;
    switch (state_) {
      case State::start: expected = "the header to be a JSON object"; break;
      case State::root: expected = "a tensor name or the end of the header"; break;
      case State::root_value:
        expected = key_is_metadata_ ? "an object of strings" : "an object {dtype, shape, data_offsets}";
        break;
      case State::meta: expected = "a key or the end of __metadata__"; break;
      case State::meta_value: expected = "a string (__metadata__ maps strings to strings)"; break;
      case State::tensor: expected = "dtype, shape or data_offsets"; break;
      case State::tensor_value:
        expected = field_ == Field::dtype   ? "dtype to be a string"
                   : field_ == Field::shape ? "shape to be an array of integers"
                                            : "data_offsets to be an array of two integers";
        break;
      case State::dims:
      case State::offsets: expected = "a non-negative integer in " + std::string(state_ == State::dims ? "shape" : "data_offsets"); break;
      case State::done: expected = "nothing after the header object"; break;
    }
    bad(CKPT_ERR_FORMAT, "expected " + expected + ", found " + found, lookahead);
  }

  uint32_t dtype_of(const std::string& name) const {
    if (uint32_t d = st_dtype_from_name(name)) return d;
    if (is_foreign_dtype(name))
      fail(CKPT_ERR_UNSUPPORTED, "at byte " + std::to_string(cur().at) + " (tensor " + quote_name(cur().key) +
                                     "): dtype " + name + " is valid safetensors but has no ckpt equivalent" +
                                     " (ckpt holds F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(cur().at) + " (tensor " + quote_name(cur().key) +
                              "): unknown dtype " + quote_name(name, true));
  }

  Header& out_;
  const char* text_;
  const char** pos_;
  State state_ = State::start;
  Field field_ = Field::dtype;
  bool key_is_metadata_ = false;
  struct TensorKey {
    const Header* h;
    std::string_view operator()(size_t i) const { return h->tensors[i].key; }
  };
  TensorKey tensor_key() const { return {&out_}; }
  ckpt::sdk::NameIndex tensor_keys_;  // over out_.tensors
  uint64_t metadata_at_ = 0;
  std::unordered_set<std::string> meta_keys_;
  std::string meta_key_;
  uint64_t meta_at_ = 0;
  TensorEntry& cur() { return out_.tensors.back(); }
  const TensorEntry& cur() const { return out_.tensors.back(); }
  std::string dtype_name_;
  unsigned fields_seen_ = 0;
  unsigned offsets_seen_ = 0;
};

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// The specification's rules for the data section, checked before any tensor is touched.
void check_offsets(const Header& h, uint64_t data_size) {
  // Messages are built only on failure: a header may list a million tensors.
  auto where = [](const TensorEntry& t) { return "at byte " + std::to_string(t.at) + " (tensor " + quote_name(t.key) + ")"; };
  for (const TensorEntry& t : h.tensors) {
    // The non-zero dimensions are bounded alone, as ckpt bounds every tensor's: a 0 would
    // otherwise hide any product behind an empty tensor ([0, 2^62, 2^62]) whose strides
    // overflow int64 wherever they are computed.
    unsigned __int128 nonzero = ckpt::sdk::dtype_size(t.dtype);
    bool empty = false;
    for (int64_t d : t.shape) empty = empty || d == 0;
    for (int64_t d : t.shape) {
      if (d == 0) continue;
      nonzero *= static_cast<uint64_t>(d);  // at most 2^62 * 2^63 here: no overflow
      if (nonzero > (static_cast<unsigned __int128>(1) << 62))
        fail(CKPT_ERR_LIMIT, where(t) + ": shape " + shape_text(t.shape) + " " + st_dtype_name(t.dtype) +
                                 (empty ? " holds more than 2^62 bytes (its non-zero dimensions alone)" : " holds more than 2^62 bytes"));
    }
    const unsigned __int128 nbytes = empty ? 0 : nonzero;
    if (t.end < t.begin)
      fail(CKPT_ERR_FORMAT, where(t) + ": data_offsets " + range_text(t) + " end before they begin");
    if (t.end > data_size)
      fail(CKPT_ERR_LIMIT, where(t) + ": data_offsets " + range_text(t) +
                               " run past the end of the file (its data section holds " + std::to_string(data_size) +
                               " bytes, from byte " + std::to_string(h.data_start) + ")");
    if (t.end - t.begin != nbytes)
      fail(CKPT_ERR_FORMAT, where(t) + ": shape " + shape_text(t.shape) + " " + st_dtype_name(t.dtype) + " needs " +
                                std::to_string(static_cast<uint64_t>(nbytes)) + " bytes, data_offsets " +
                                range_text(t) + " hold " + std::to_string(t.end - t.begin));
  }
  std::vector<size_t> order(h.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto before = [&](size_t a, size_t b) {
    const TensorEntry &x = h.tensors[a], &y = h.tensors[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  };
  // Writers list tensors in data order: sorted already, most of the time.
  if (!std::is_sorted(order.begin(), order.end(), before)) std::stable_sort(order.begin(), order.end(), before);
  uint64_t covered = 0;
  const TensorEntry* previous = nullptr;
  for (size_t i : order) {
    const TensorEntry& t = h.tensors[i];
    if (t.begin > covered)
      fail(CKPT_ERR_FORMAT, where(t) + ": data bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
                                ") belong to no tensor (a hole before this tensor's " + range_text(t) + ")");
    if (t.begin < covered)
      fail(CKPT_ERR_FORMAT, where(t) + ": data_offsets " + range_text(t) + " overlap tensor " +
                                quote_name(previous->key) + " " + range_text(*previous));
    covered = t.end;
    previous = &t;
  }
  if (covered != data_size)
    fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(h.data_start + covered) + ": the last " +
                              std::to_string(data_size - covered) + " bytes of the file belong to no tensor (" +
                              (previous ? "the last tensor, " + quote_name(previous->key) + ", ends at data offset " +
                                              std::to_string(covered)
                                        : std::string("the header lists no tensor")) +
                              ")");
}

}  // namespace

Header parse_header(std::span<const std::byte> file) {
  if (file.size() < 8)
    fail(CKPT_ERR_FORMAT, "at byte 0: the file has " + std::to_string(file.size()) +
                              " bytes, fewer than the 8 of the header size");
  Header h;
  h.size = read_le64(file.data());
  if (h.size > kMaxHeaderBytes)
    fail(CKPT_ERR_LIMIT, "at byte 0: the header size " + std::to_string(h.size) + " exceeds the cap of " +
                             std::to_string(kMaxHeaderBytes) + " bytes");
  if (h.size > file.size() - 8)
    fail(CKPT_ERR_LIMIT, "at byte 0: the header size " + std::to_string(h.size) + " runs past the end of the file (" +
                             std::to_string(file.size() - 8) + " bytes follow it)");
  h.data_start = 8 + h.size;
  const char* text = reinterpret_cast<const char*>(file.data()) + 8;
  if (h.size == 0 || text[0] != '{')
    fail(CKPT_ERR_FORMAT, "at byte 8: the header must start with '{'" +
                              (h.size == 0 ? std::string(", but it is empty")
                                           : ", found " + quote_name(std::string_view(text, 1), true)));
  // nlohmann's lexer takes a NUL for the end of its input, so NUL padding (which the reference
  // implementation refuses) would pass unseen. JSON text holds no NUL anywhere.
  if (const void* nul = std::memchr(text, 0, h.size))
    fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(8 + (static_cast<const char*>(nul) - text)) +
                              ": the header holds a NUL byte (JSON text has none; padding is spaces)");
  const char* pos = text;
  // Each tensor takes some 50 bytes of header at least: room for all of them up front, where
  // growing the vector moved a million entries twenty times.
  h.tensors.reserve(h.size / 48);
  if (!parse_header_fast(text, file.size() - h.data_start, h)) {
    h.tensors.clear();
    h.metadata.clear();
    h.has_metadata = false;
    HeaderHandler handler(h, text, &pos);
    json::sax_parse(CountingIterator(text, &pos), CountingIterator(text + h.size, nullptr), &handler,
                    nlohmann::json::input_format_t::json, /*strict=*/true);
  }
  check_offsets(h, file.size() - h.data_start);
  return h;
}

}  // namespace ckpt_safetensors
