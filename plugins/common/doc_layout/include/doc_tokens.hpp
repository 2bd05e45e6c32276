// The tokens a format's tokeniser feeds the layout parser: nlohmann's SAX events for json,
// msgpack-cxx's visitor calls for msgpack. The layout is described once over these; the
// tokeniser supplies only the primitives and where each one is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ckpt_doc {

enum class TokenKind : uint8_t {
  begin_object,
  end_object,
  begin_array,
  end_array,
  key,
  string,
  integer,      // fits in int64: `i`
  big_integer,  // above INT64_MAX: `u`
  number,       // with a fraction or exponent (json: `text`), or a float (msgpack: `f`)
  boolean,
  null,
  binary,  // `offset` and `size` of the payload in the file
  other,   // anything else the format has (a msgpack ext)
};

struct Token {
  TokenKind kind;
  // The byte offset messages name: json the end of the token, msgpack the start of the item.
  size_t at = 0;
  std::string_view text{};  // key, string, number literal
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  // text lives as long as the tree (a view into the mapped file), so it need not be copied.
  bool stable = false;
  uint8_t float_bits = 64;  // number: the width on disk, for messages
  uint64_t offset = 0;
  uint64_t size = 0;
};

}  // namespace ckpt_doc
