// nlohmann's SAX events as tokens of the shared layout. What is json's own stays here: where
// a token is (the cursor), long strings that skipped the lexer, integers beyond 64 bits, and
// nlohmann's own syntax errors.
#include "json_parser.hpp"

#include "input_cursor.hpp"

#include <doc_parser.hpp>

#include <ckpt/sdk.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <limits>

namespace ckpt_json {
namespace {

using json = nlohmann::json;
using ckpt_doc::Token;
using ckpt_doc::TokenKind;

class Tokeniser final : public nlohmann::json_sax<json> {
 public:
  Tokeniser(InputCursor& cursor, ckpt_doc::LayoutParser& layout) : cursor_(cursor), layout_(layout) {}

  bool null() override { return emit({.kind = TokenKind::null}); }
  bool boolean(bool b) override { return emit({.kind = TokenKind::boolean, .b = b}); }
  bool number_integer(int64_t i) override { return emit({.kind = TokenKind::integer, .i = i}); }
  bool number_unsigned(uint64_t u) override {
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return number_integer(static_cast<int64_t>(u));
    return emit({.kind = TokenKind::big_integer, .u = u});
  }
  bool number_float(double, const std::string& text) override {
    // An integer literal reaches here only when it overflows 64 bits: Python reads it as an
    // exact int, a float64 would be another value.
    if (!layout_.in_payload() && text.find_first_of(".eE") == std::string::npos)
      layout_.fail(cursor_.offset(), "the integer " + text.substr(0, 40) + " is outside the 64-bit range");
    return emit({.kind = TokenKind::number, .text = text});
  }
  bool string(std::string& lexed) override { return text_token(TokenKind::string, lexed); }
  bool binary(binary_t&) override { return emit({.kind = TokenKind::binary}); }
  bool start_object(std::size_t) override { return emit({.kind = TokenKind::begin_object}); }
  bool key(std::string& lexed) override { return text_token(TokenKind::key, lexed); }
  bool end_object() override { return emit({.kind = TokenKind::end_object}); }
  bool start_array(std::size_t) override { return emit({.kind = TokenKind::begin_array}); }
  bool end_array() override { return emit({.kind = TokenKind::end_array}); }

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
    ckpt::sdk::fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(at) + ": not valid JSON: " + clean);
  }

 private:
  bool emit(Token t) {
    t.at = cursor_.offset();
    layout_.token(t);
    return true;
  }

  bool text_token(TokenKind kind, const std::string& lexed) {
    // Not stable even when it is a view into the file: the reader drops the mapping unless a
    // $data string needs it, so names and strings are copied, as nlohmann would have.
    return emit({.kind = kind, .text = cursor_.take_string(lexed)});
  }

  InputCursor& cursor_;
  ckpt_doc::LayoutParser& layout_;
};

}  // namespace

JsonDocument parse_document(std::string_view text) {
  // nlohmann's lexer takes a NUL byte for the end of its input, so text after one would be
  // ignored here but refused by Python's json (and any strict reader). JSON text can hold no
  // raw NUL at all (in strings it is escaped), so one anywhere is an error.
  if (const void* nul = text.empty() ? nullptr : std::memchr(text.data(), 0, text.size()))
    ckpt::sdk::fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(static_cast<const char*>(nul) - text.data()) +
                                         ": a NUL byte, which JSON text cannot hold");
  InputCursor cursor(text);
  JsonDialect dialect(cursor);
  ckpt_doc::LayoutParser layout(dialect);
  Tokeniser tokeniser(cursor, layout);
  json::sax_parse(CursorIterator(&cursor), CursorIterator(text.data() + text.size()), &tokeniser,
                  json::input_format_t::json, /*strict=*/true, /*ignore_comments=*/false);
  JsonDocument doc{layout.take(cursor.offset()), {}, layout.take_text()};
  doc.bytes = dialect.take_bytes(doc.tree.tensors.size());
  return doc;
}

}  // namespace ckpt_json
