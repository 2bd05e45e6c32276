// msgpack-cxx's visitor calls as tokens of the shared layout. The parser never copies str or
// bin payloads and never allocates from a declared count (only per nesting level, which the
// layout caps), so a hostile header cannot make it allocate.
//
// msgpack-cxx tells a visitor values but not where they are. Errors must name byte offsets,
// so the tokeniser keeps its own cursor: every value callback corresponds to exactly one item
// starting at the cursor, whose length follows from its type byte (checked against the
// payload pointers the parser hands over).
#include "msgpack_parser.hpp"

#include "msgpack_dialect.hpp"

#include <doc_parser.hpp>

#include <ckpt/sdk.hpp>

// parse.hpp needs the unpacker's definitions of its helper templates.
#include <msgpack/unpack.hpp>
#include <msgpack/parse.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace ckpt_msgpack {
namespace {

using ckpt::sdk::fail;
using ckpt_doc::Token;
using ckpt_doc::TokenKind;

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

class Tokeniser {
 public:
  Tokeniser(std::span<const std::byte> file, ckpt_doc::LayoutParser& layout)
      : base_(reinterpret_cast<const char*>(file.data())), size_(file.size()), layout_(layout) {}

  size_t cursor() const { return pos_; }

  // ---- msgpack-cxx visitor interface ----
  bool visit_nil() { return scalar({.kind = TokenKind::null, .at = advance(0)}); }
  bool visit_boolean(bool v) { return scalar({.kind = TokenKind::boolean, .at = advance(0), .b = v}); }
  bool visit_positive_integer(uint64_t v) {
    const size_t at = advance(0);
    if (v > static_cast<uint64_t>(INT64_MAX)) return scalar({.kind = TokenKind::big_integer, .at = at, .u = v});
    return scalar({.kind = TokenKind::integer, .at = at, .i = static_cast<int64_t>(v)});
  }
  // msgpack-cxx reports every signed encoding here, including non-negative values.
  bool visit_negative_integer(int64_t v) { return scalar({.kind = TokenKind::integer, .at = advance(0), .i = v}); }
  // float32 widens to float64 exactly; only other producers write it.
  bool visit_float32(float v) {
    return scalar({.kind = TokenKind::number, .at = advance(0), .f = v, .float_bits = 32});
  }
  bool visit_float64(double v) { return scalar({.kind = TokenKind::number, .at = advance(0), .f = v}); }
  bool visit_str(const char* p, uint32_t n) {
    const size_t at = advance(n, p);
    // The parser passes no usable pointer for an empty str; keep views non-null anyway.
    const std::string_view s = n ? std::string_view(p, n) : std::string_view("", 0);
    if (in_key_) {
      layout_.token({.kind = TokenKind::key, .at = at, .text = s, .stable = true});
      return true;
    }
    return scalar({.kind = TokenKind::string, .at = at, .text = s, .stable = true});
  }
  bool visit_bin(const char* p, uint32_t n) {
    const size_t at = advance(n, p);
    return scalar({.kind = TokenKind::binary, .at = at, .offset = at + header_size(byte(at)), .size = n});
  }
  bool visit_ext(const char*, uint32_t) { return scalar({.kind = TokenKind::other, .at = pos_}); }

  bool start_array(uint32_t n) {
    const size_t at = advance(0);
    check_count(at, n, 1, "array", "elements");
    scalar({.kind = TokenKind::begin_array, .at = at});
    open_.push_back({at, 0});
    return true;
  }
  bool start_array_item() { return true; }
  bool end_array_item() {
    ++open_.back().done;
    return true;
  }
  bool end_array() {
    open_.pop_back();
    layout_.token({.kind = TokenKind::end_array, .at = pos_});
    return true;
  }

  bool start_map(uint32_t n) {
    const size_t at = advance(0);
    check_count(at, n, 2, "map", "entries");
    scalar({.kind = TokenKind::begin_object, .at = at});
    open_.push_back({at, 0});
    return true;
  }
  bool start_map_key() {
    in_key_ = true;
    return true;
  }
  bool end_map_key() {
    in_key_ = false;
    return true;
  }
  bool start_map_value() { return true; }
  bool end_map_value() {
    ++open_.back().done;
    return true;
  }
  bool end_map() {
    open_.pop_back();
    layout_.token({.kind = TokenKind::end_object, .at = pos_});
    return true;
  }

  void parse_error(size_t, size_t) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", pos_ < size_ ? byte(pos_) : 0u);
    layout_.fail(pos_, std::string("invalid MessagePack type byte ") + buf);
  }
  void insufficient_bytes(size_t, size_t) { layout_.fail(pos_, "file truncated: " + truncation()); }

 private:
  struct Open {
    size_t at;      // the container's header
    uint64_t done;  // entries or elements completed
  };

  uint8_t byte(size_t at) const { return static_cast<uint8_t>(base_[at]); }

  // Where a key belongs only a str will do; everything else is a value.
  bool scalar(const Token& t) {
    if (in_key_) layout_.not_a_key(t);
    layout_.token(t);
    return true;
  }

  // Moves the cursor over the item it stands on; returns where the item starts.
  size_t advance(uint64_t payload, const char* payload_ptr = nullptr) {
    const size_t at = pos_;
    if (at >= size_) fail(CKPT_ERR_INTERNAL, "msgpack parser ran past the cursor");
    const size_t h = header_size(byte(at));
    if (payload_ptr && payload > 0 && payload_ptr != base_ + at + h)
      fail(CKPT_ERR_INTERNAL, "msgpack parser and the cursor disagree at byte " + std::to_string(at));
    pos_ = at + h + payload;
    return at;
  }

  // A container's items take at least `min_bytes` each, so a count beyond the bytes left is
  // a corrupt or truncated file, caught before anything is built for it.
  void check_count(size_t at, uint64_t n, uint64_t min_bytes, const char* what, const char* items) const {
    const uint64_t left = size_ - pos_;
    if (n * min_bytes > left)
      layout_.fail(at, std::string("file truncated or corrupt: ") + what + " declares " + std::to_string(n) + " " +
                           items + " but only " + std::to_string(left) + " bytes follow");
  }

  std::string truncation() const {
    if (pos_ >= size_) {
      std::string s = "the file ends at byte " + std::to_string(size_);
      if (!open_.empty())
        s += " inside the " + std::string(kind_of_tag(byte(open_.back().at))) + " at byte " +
             std::to_string(open_.back().at) + " after " + std::to_string(open_.back().done) + " complete items";
      return s;
    }
    const uint8_t tag = byte(pos_);
    const size_t h = header_size(tag);
    const size_t left = size_ - pos_;
    if (left < h)
      return std::string("the header of a ") + kind_of_tag(tag) + " needs " + std::to_string(h) + " bytes, " +
             std::to_string(left) + " remain";
    uint64_t declared = 0;
    if (tag >= 0xa0 && tag <= 0xbf) declared = tag & 0x1f;
    else if (tag >= 0xd4 && tag <= 0xd8) declared = (1u << (tag - 0xd4)) + 1;
    else
      for (size_t k = 1; k < h; ++k) declared = (declared << 8) | byte(pos_ + k);
    if (tag >= 0xc7 && tag <= 0xc9) declared += 1;  // ext's type byte
    return std::string("a ") + kind_of_tag(tag) + " declares " + std::to_string(declared) + " bytes but only " +
           std::to_string(left - h) + " remain";
  }

  const char* base_;
  size_t size_;
  size_t pos_ = 0;
  bool in_key_ = false;
  std::vector<Open> open_;  // as deep as the layout lets the document nest
  ckpt_doc::LayoutParser& layout_;
};

}  // namespace

MsgpackDocument parse_document(std::span<const std::byte> file) {
  if (file.empty()) fail(CKPT_ERR_FORMAT, "at byte 0 (<root>): the file is empty, expected a MessagePack map");
  MsgpackDialect dialect;
  ckpt_doc::LayoutParser layout(dialect);
  Tokeniser tokeniser(file, layout);
  size_t off = 0;
  // Every failure throws from inside the visitor; a false return would be a parser state we
  // did not foresee.
  if (!msgpack::parse(reinterpret_cast<const char*>(file.data()), file.size(), off, tokeniser))
    layout.fail(tokeniser.cursor(), "MessagePack parser stopped unexpectedly");
  if (off != file.size())
    layout.fail(off, std::to_string(file.size() - off) + " bytes of trailing data after the document (it ends at byte " +
                         std::to_string(off) + ")");
  MsgpackDocument doc{layout.take(off), {}, layout.take_text()};
  doc.offsets = dialect.take_offsets(doc.tree.tensors.size());
  return doc;
}

}  // namespace ckpt_msgpack
