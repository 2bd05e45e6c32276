// The iterator nlohmann's SAX parser reads the mapped file through. It does two jobs the
// library does not:
//  - It tracks the byte offset, so errors found in SAX callbacks can say where they are (the
//    lexer copies the iterator, so the position lives in a shared InputCursor).
//  - It hands long plain strings to the lexer as "" and records where the real text is. The
//    lexer appends every character of a string to two growing std::strings (the value and its
//    error context); for a 300 MB base64 tensor that costs seconds and twice the memory. A
//    "plain" run is printable ASCII without '"' or '\\', which the lexer would copy verbatim,
//    so the parser's result is the same; the SAX handler asks take_string() for the text.
#pragma once

#include "text_scan.hpp"

#include <ckpt/sdk.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>

namespace ckpt_json {

class InputCursor {
 public:
  // Shorter strings go through the lexer: skipping them saves nothing.
  static constexpr size_t kMinSkip = 64;

  explicit InputCursor(std::string_view text)
      : begin_(text.data()), pos_(text.data()), end_(text.data() + text.size()) {}
  InputCursor(const InputCursor&) = delete;
  InputCursor& operator=(const InputCursor&) = delete;

  size_t offset() const { return static_cast<size_t>(pos_ - begin_); }
  size_t offset_of(const char* p) const { return static_cast<size_t>(p - begin_); }
  // std::less: `p` may point into an unrelated object (a lexed string), where < is unspecified.
  bool contains(const char* p) const {
    return !std::less<const char*>{}(p, begin_) && !std::less<const char*>{}(end_, p);
  }
  const char* begin() const { return begin_; }
  const char* end() const { return end_; }
  const char* pos() const { return pos_; }

  // The text of the string token the lexer just finished: the skipped run if this token was
  // one, else what the lexer built.
  std::string_view take_string(const std::string& lexed) {
    if (skipped_begin_ && skipped_end_ + 1 == pos_) {
      std::string_view s(skipped_begin_, static_cast<size_t>(skipped_end_ - skipped_begin_));
      skipped_begin_ = skipped_end_ = nullptr;
      return s;
    }
    return lexed;
  }

  char current() const { return *pos_; }

  void advance() {
    char c = *pos_++;
    switch (state_) {
      case State::outside:
        if (c == '"') {
          state_ = State::in_string;
          skip_plain_run();
        }
        break;
      case State::in_string:
        if (c == '\\') state_ = State::in_escape;
        else if (c == '"') state_ = State::outside;
        break;
      case State::in_escape:
        state_ = State::in_string;
        break;
    }
  }

 private:
  enum class State : uint8_t { outside, in_string, in_escape };

  void skip_plain_run() {
    size_t n = plain_prefix(pos_, static_cast<size_t>(end_ - pos_));
    const char* q = pos_ + n;
    if (n < kMinSkip) return;
    if (q == end_)
      ckpt::sdk::fail(CKPT_ERR_FORMAT, "at byte " + std::to_string(offset() - 1) +
                                     ": string never ends (the file stops inside it; truncated?)");
    if (*q != '"') return;  // an escape or non-ASCII text follows: the lexer must see it all
    skipped_begin_ = pos_;
    skipped_end_ = q;
    pos_ = q;
  }

  const char* begin_;
  const char* pos_;
  const char* end_;
  State state_ = State::outside;
  const char* skipped_begin_ = nullptr;
  const char* skipped_end_ = nullptr;
};

// An input iterator over an InputCursor; the end iterator is just a position.
class CursorIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = char;

  CursorIterator() = default;
  explicit CursorIterator(InputCursor* cursor) : cursor_(cursor) {}
  explicit CursorIterator(const char* end) : fixed_(end) {}

  char operator*() const { return cursor_->current(); }
  CursorIterator& operator++() {
    cursor_->advance();
    return *this;
  }
  void operator++(int) { cursor_->advance(); }
  friend bool operator==(const CursorIterator& a, const CursorIterator& b) {
    return a.where() == b.where();
  }

 private:
  const char* where() const { return cursor_ ? cursor_->pos() : fixed_; }
  InputCursor* cursor_ = nullptr;
  const char* fixed_ = nullptr;
};

}  // namespace ckpt_json
