#include "hello.hpp"

#include <bit>
#include <charconv>

namespace hello {

using ckpt::sdk::fail;

namespace {

// Lower case only: the writer never emits upper case, so accepting it would accept a flipped bit.
int hex_value(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

// Reads the text with every length checked against what is left of the file.
struct Cursor {
  std::string_view s;
  const std::string& path;
  size_t pos = 0;

  [[noreturn]] void bad(const std::string& what) const { fail(CKPT_ERR_FORMAT, "'" + path + "' at byte " + std::to_string(pos) + ": " + what); }
  size_t left() const { return s.size() - pos; }
  std::string_view take(uint64_t n) {
    if (n > left()) bad("the file ends inside a record");
    pos += n;
    return s.substr(pos - n, n);
  }
  void expect(char c) {
    if (take(1)[0] != c) bad(c == '\n' ? "expected the end of the record" : std::string("expected '") + c + "'");
  }
  template <class Int>
  Int number() {
    Int v{};
    const auto [end, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), v);
    if (ec != std::errc() || end == s.data() + pos) bad("expected a number");
    pos = static_cast<size_t>(end - s.data());
    return v;
  }
  std::string netstring() {
    const auto n = number<uint64_t>();
    expect(':');
    return std::string(take(n));
  }
  ckpt::sdk::Value value() {
    const char letter = take(1)[0];
    const size_t t = kTypeLetters.find(static_cast<char>(letter | 0x20));
    if (t == std::string_view::npos) bad("unknown attribute type");
    const bool array = letter < 'a';
    uint64_t n = 1;
    if (array && (expect(' '), n = number<uint64_t>()) > left() / 2)  // each element takes two bytes at least
      fail(CKPT_ERR_LIMIT, "an attribute claims " + std::to_string(n) + " elements, more than the file holds");
    ckpt::sdk::Value v;
    v.type = static_cast<uint32_t>(t + (array ? 5 : 1));
    for (uint64_t i = 0; i < n; ++i) {
      expect(' ');
      if (t == 0) {
        const char c = take(1)[0];
        if (c != '0' && c != '1') bad("a bool is 0 or 1");
        v.bools.push_back(c == '1');
      } else if (t == 1) {
        v.ints.push_back(number<int64_t>());
      } else if (t == 2) {
        uint64_t bits = 0;
        for (char c : take(16)) {
          if (hex_value(c) < 0) bad("a float64 is 16 hex digits");
          bits = bits << 4 | static_cast<uint64_t>(hex_value(c));
        }
        v.floats.push_back(std::bit_cast<double>(bits));
      } else {
        v.strings.push_back(netstring());
      }
    }
    if (array) return v;
    return t == 0 ? ckpt::sdk::Value::boolean(v.bools[0]) : t == 1 ? ckpt::sdk::Value::integer(v.ints[0])
         : t == 2 ? ckpt::sdk::Value::floating(v.floats[0]) : ckpt::sdk::Value::string(v.strings[0]);
  }
};

}  // namespace

Reader::Reader(const std::string& path) : file_(path) {
  Cursor in{{reinterpret_cast<const char*>(file_.data()), file_.size()}, file_.path()};
  if (!in.s.starts_with(kMagic)) in.bad("not a hello file");
  if (!in.s.starts_with(kHeader)) fail(CKPT_ERR_UNSUPPORTED, "'" + path + "' is not hello version 1, the one this plugin reads");
  in.pos = kHeader.size();
  // Exactly one root group, closed at the very end: a file cut short anywhere is an error.
  std::vector<size_t> open;  // the groups not yet ended, innermost last
  do {
    const char kind = in.take(1)[0];
    std::string name;
    if (kind != 'E') in.expect(' '), name = in.netstring();
    if (open.empty() && kind != 'G') in.bad("the first record must be the root group");
    if (kind == 'G') {
      if (open.empty()) tree_.root().name = std::move(name);
      open.push_back(open.empty() ? 0 : tree_.add_group(open.back(), std::move(name)));
    } else if (kind == 'E') {
      open.pop_back();
    } else if (kind == 'A') {
      in.expect(' ');
      tree_.add_attribute(open.back(), std::move(name), in.value());
    } else if (kind == 'T') {
      ckpt::sdk::Tree::Tensor t{.name = std::move(name)};
      in.expect(' ');
      if (!(t.dtype = ckpt::sdk::dtype_from_name(in.take(std::min(in.s.find(' ', in.pos), in.s.size()) - in.pos))))
        in.bad("unknown dtype");
      in.expect(' ');
      const auto rank = in.number<uint64_t>();
      if (rank > in.left() / 2) fail(CKPT_ERR_LIMIT, "a tensor claims rank " + std::to_string(rank) + ", more than the file holds");
      for (uint64_t i = 0; i < rank; ++i) in.expect(' '), t.shape.push_back(in.number<int64_t>());
      in.expect(' ');
      t.nbytes = ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), "tensor '" + t.name + "'");
      t.id = hex_at_.size();
      hex_at_.push_back(in.pos);
      in.take(2 * t.nbytes);  // skipped, not decoded: list() stays cheap
      tree_.add_tensor(open.back(), std::move(t));
    } else {
      in.bad("unknown record type");
    }
    in.expect('\n');
  } while (!open.empty());
  if (in.left()) in.bad("data after the root group's end");
}

void Reader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  if (id >= hex_at_.size() || dst.size() != tree_.tensors[id].nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, "no tensor " + std::to_string(id) + " of " + std::to_string(dst.size()) + " bytes");
  const char* hex = reinterpret_cast<const char*>(file_.data()) + hex_at_[id];
  for (size_t i = 0; i < dst.size(); ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) fail(CKPT_ERR_FORMAT, "'" + file_.path() + "' at byte " + std::to_string(hex_at_[id] + 2 * i) + ": a tensor byte is not two hex digits");
    dst[i] = static_cast<std::byte>(hi << 4 | lo);
  }
}

}  // namespace hello
