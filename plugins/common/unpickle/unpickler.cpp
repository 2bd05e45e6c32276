#include "unpickler.hpp"

#include <ckpt/sdk_value.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <unordered_map>

namespace ckpt_pickle {

using ckpt::sdk::fail;

std::span<const std::byte> Input::take(uint64_t n, const char* what) {
  if (n > left())
    this->fail(CKPT_ERR_FORMAT, pos_,
               std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, " +
                   std::to_string(left()) + " remain");
  auto s = bytes_.subspan(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return s;
}

std::string_view Input::line(const char* what) {
  const size_t start = pos_;
  for (size_t i = pos_; i < bytes_.size(); ++i) {
    if (bytes_[i] == std::byte{'\n'}) {
      pos_ = i + 1;
      return {reinterpret_cast<const char*>(bytes_.data()) + start, i - start};
    }
  }
  this->fail(CKPT_ERR_FORMAT, start, std::string("truncated: ") + what + " has no end of line");
}

std::string Input::where(size_t at) const { return source_ + ", at byte " + std::to_string(at); }

void Input::fail(ckpt_status_code code, size_t at, const std::string& what) const {
  ckpt::sdk::fail(code, where(at) + ": " + what);
}

bool is_legacy_torch(std::span<const uint8_t> head) {
  static constexpr uint8_t kMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (head.size() < 2 || head[0] != 0x80 || head[1] < 2 || head[1] > 5) return false;
  size_t at = 2;
  if (head.size() > at && head[at] == 0x95) at += 9;  // FRAME and its 8-byte length
  return head.size() >= at + sizeof kMagic && std::equal(std::begin(kMagic), std::end(kMagic), head.begin() + at);
}

void refuse(const Input& in, size_t at, std::string_view module, std::string_view name, std::string_view why) {
  std::string shown = display_name(module, name);
  std::string stored = std::string(module) + "." + std::string(name);
  std::string msg = "refused: " + shown;
  if (stored != shown) msg += " (pickled as " + stored + ")";
  msg += ": " + std::string(why) + "; nothing in the file was run";
  in.fail(CKPT_ERR_UNSUPPORTED, at, msg);
}

namespace {

template <class T>
T load_le(std::span<const std::byte> b) {
  // Pickles are little-endian; so are the hosts ckpt builds for.
  static_assert(std::endian::native == std::endian::little);
  T v;
  std::memcpy(&v, b.data(), sizeof v);
  return v;
}

// Python's two's-complement little-endian longs (LONG1, LONG4), up to 64 bits.
int64_t decode_long(Input& in, size_t at, std::span<const std::byte> b) {
  if (b.empty()) return 0;
  const bool negative = (static_cast<uint8_t>(b.back()) & 0x80) != 0;
  size_t n = b.size();
  // Bytes beyond the eighth must only extend the sign.
  while (n > 8) {
    const auto top = static_cast<uint8_t>(b[n - 1]);
    if (top != (negative ? 0xff : 0x00)) in.fail(CKPT_ERR_UNSUPPORTED, at, "an integer wider than 64 bits");
    --n;
  }
  uint64_t u = negative ? ~uint64_t{0} : 0;
  for (size_t i = 0; i < n; ++i) {
    u &= ~(uint64_t{0xff} << (8 * i));
    u |= uint64_t{static_cast<uint8_t>(b[i])} << (8 * i);
  }
  const auto v = static_cast<int64_t>(u);
  if (b.size() > 8 && ((v < 0) != negative)) in.fail(CKPT_ERR_UNSUPPORTED, at, "an integer wider than 64 bits");
  return v;
}

// Python writes str as UTF-8 with lone surrogates allowed, and reads nothing else: no overlong
// forms, nothing past U+10FFFF (its "surrogatepass" handler).
bool valid_utf8(std::string_view s) { return ckpt::sdk::invalid_utf8_at(s, true) == std::string_view::npos; }

// Every opcode makes at most one object (or memo entry) of up to some 100 bytes, so a hostile
// pickle could make a process allocate 100 times its size. This bounds it near 400 MiB; a
// checkpoint's pickle holds thousands of objects, a pickled list of a million floats a million.

class Machine {
 public:
  // An object costs some 100 bytes here and more in the document; an honest pickle spends two
  // bytes or more on each (an opcode and its operand, or a memo slot), so a pickle of n bytes may
  // build at most n/2 of them (plus room for small ones).
  Machine(Input& in, Policy& policy, Arena& arena)
      : in_(in), policy_(policy), arena_(arena), max_objects_(std::min<size_t>(kMaxObjects, 65536 + in.bytes().size() / 2)) {}

  Obj* run() {
    for (;;) {
      at_ = in_.pos();
      const uint8_t op = in_.byte("an opcode");
      if (op == '.') {  // STOP
        if (!marks_.empty()) in_.fail(CKPT_ERR_FORMAT, at_, "STOP inside an open MARK");
        if (stack_.size() != 1)
          in_.fail(CKPT_ERR_FORMAT, at_, "STOP with " + std::to_string(stack_.size()) + " objects on the stack (expected 1)");
        return stack_.back();
      }
      step(op);
      if (arena_.size() + memo_.size() > max_objects_)
        in_.fail(CKPT_ERR_LIMIT, at_, "the pickle builds more than " + std::to_string(max_objects_) + " objects");
    }
  }

 private:
  void push(Obj* o) { stack_.push_back(o); }

  Obj* pop(const char* what) {
    if (stack_.size() <= floor()) in_.fail(CKPT_ERR_FORMAT, at_, std::string("stack underflow: ") + what);
    Obj* o = stack_.back();
    stack_.pop_back();
    return o;
  }

  Obj*& top(const char* what) {
    if (stack_.size() <= floor()) in_.fail(CKPT_ERR_FORMAT, at_, std::string("stack underflow: ") + what);
    return stack_.back();
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  std::vector<Obj*> pop_mark(const char* what) {
    if (marks_.empty()) in_.fail(CKPT_ERR_FORMAT, at_, std::string(what) + " without a MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Obj*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  Text* text(Kind k, std::span<const std::byte> b, bool check_utf8) {
    auto* t = arena_.make<Text>(k);
    t->view = std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
    if (!t->view.data()) t->view = std::string_view("", 0);
    if (check_utf8 && !valid_utf8(t->view)) in_.fail(CKPT_ERR_FORMAT, at_, "a str that is not UTF-8");
    return t;
  }

  // The number of an INT or LONG line. CPython's C unpickler reads it with strtol(s, 0), so
  // "010" is 8 and "0x10" 16 there, and 10 and an error in Python's own: only plain decimal,
  // without leading zeros or a sign but '-', has one reading.
  int64_t decimal_line(std::string_view l, const char* what) {
    std::string_view digits = l.substr(!l.empty() && l[0] == '-' ? 1 : 0);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos ||
        (digits.size() > 1 && digits[0] == '0'))
      in_.fail(CKPT_ERR_FORMAT, at_, std::string(what) + " '" + std::string(l.substr(0, 32)) +
                                         "' is not a plain decimal number (readers differ on its value)");
    int64_t v = 0;
    auto r = std::from_chars(l.data(), l.data() + l.size(), v);
    if (r.ec != std::errc() || r.ptr != l.data() + l.size())
      in_.fail(CKPT_ERR_UNSUPPORTED, at_, std::string(what) + " that is not a 64-bit number");
    return v;
  }

  Seq* seq(Kind k, std::vector<Obj*> items) {
    auto* s = arena_.make<Seq>(k);
    s->items = std::move(items);
    return s;
  }

  std::string name_of(Obj* o, const char* what) {
    const Text* t = as_text(o);
    if (!t || t->kind != Kind::string) in_.fail(CKPT_ERR_FORMAT, at_, std::string(what) + " is not a str");
    return std::string(t->str());
  }

  void set_items(Obj* target, const std::vector<Obj*>& kv) {
    if (target->kind == Kind::dict) {
      auto* d = static_cast<Dict*>(target);
      for (size_t i = 0; i + 1 < kv.size(); i += 2) d->put(kv[i], kv[i + 1]);
      return;
    }
    if (target->kind == Kind::record) {
      auto* r = static_cast<Record*>(target);
      auto* d = arena_.make<Dict>();
      if (r->state && r->state->kind == Kind::dict) d = static_cast<Dict*>(r->state);
      r->state = d;
      for (size_t i = 0; i + 1 < kv.size(); i += 2) d->put(kv[i], kv[i + 1]);
      return;
    }
    in_.fail(CKPT_ERR_FORMAT, at_, std::string("SETITEM on a ") + kind_name(target->kind));
  }

  void append_items(Obj* target, const std::vector<Obj*>& items) {
    if (target->kind == Kind::list) {
      auto* s = static_cast<Seq*>(target);
      s->items.insert(s->items.end(), items.begin(), items.end());
      return;
    }
    if (target->kind == Kind::record) {  // a list subclass: its items become an attribute
      auto* r = static_cast<Record*>(target);
      Obj* items_attr = r->get("items");
      Seq* s = items_attr && items_attr->kind == Kind::list ? static_cast<Seq*>(items_attr) : nullptr;
      if (!s) {
        s = seq(Kind::list, {});
        r->set("items", s);
      }
      s->items.insert(s->items.end(), items.begin(), items.end());
      return;
    }
    in_.fail(CKPT_ERR_FORMAT, at_, std::string("APPEND to a ") + kind_name(target->kind));
  }

  uint64_t memo_index_text() {
    std::string_view l = in_.line("a memo index");
    uint64_t v = 0;
    auto r = std::from_chars(l.data(), l.data() + l.size(), v);
    if (r.ec != std::errc() || r.ptr != l.data() + l.size()) in_.fail(CKPT_ERR_FORMAT, at_, "a memo index that is not a number");
    return v;
  }

  Obj* memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) in_.fail(CKPT_ERR_FORMAT, at_, "memo entry " + std::to_string(i) + " was never stored");
    return it->second;
  }

  void memo_put(uint64_t i) { memo_[i] = top("PUT"); }

  void global(std::string module, std::string name) { push(policy_.global(arena_, module, name, in_, at_)); }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t v = in_.byte("the protocol");
        if (v > 5) in_.fail(CKPT_ERR_UNSUPPORTED, at_, "pickle protocol " + std::to_string(v) + " (ckpt reads 0 to 5)");
        return;
      }
      case 0x95: {  // FRAME: a length hint only
        const uint64_t n = load_le<uint64_t>(in_.take(8, "FRAME"));
        if (n > in_.left()) in_.fail(CKPT_ERR_FORMAT, at_, "a frame of " + std::to_string(n) + " bytes, " + std::to_string(in_.left()) + " remain");
        return;
      }
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop("POP"); return;
      case '1': pop_mark("POP_MARK"); return;
      case '2': push(top("DUP")); return;
      case 'N': push(arena_.none()); return;
      case 0x88: push(arena_.boolean(true)); return;
      case 0x89: push(arena_.boolean(false)); return;
      case 'J': push(arena_.integer(load_le<int32_t>(in_.take(4, "BININT")))); return;
      case 'K': push(arena_.integer(in_.byte("BININT1"))); return;
      case 'M': push(arena_.integer(load_le<uint16_t>(in_.take(2, "BININT2")))); return;
      case 0x8a: {  // LONG1
        const uint8_t n = in_.byte("LONG1");
        push(arena_.integer(decode_long(in_, at_, in_.take(n, "LONG1"))));
        return;
      }
      case 0x8b: {  // LONG4
        const int32_t n = load_le<int32_t>(in_.take(4, "LONG4"));
        if (n < 0) in_.fail(CKPT_ERR_FORMAT, at_, "LONG4 with a negative length");
        push(arena_.integer(decode_long(in_, at_, in_.take(static_cast<uint64_t>(n), "LONG4"))));
        return;
      }
      case 'I': {  // INT (protocol 0): also True and False as I01 / I00
        std::string_view l = in_.line("INT");
        if (l == "01" || l == "00") {
          push(arena_.boolean(l == "01"));
          return;
        }
        push(arena_.integer(decimal_line(l, "INT")));
        return;
      }
      case 'L': {  // LONG (protocol 0): digits and a trailing L
        std::string_view l = in_.line("LONG");
        if (!l.empty() && l.back() == 'L') l.remove_suffix(1);
        push(arena_.integer(decimal_line(l, "LONG")));
        return;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE 754
        auto b = in_.take(8, "BINFLOAT");
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
        push(arena_.floating(std::bit_cast<double>(u)));
        return;
      }
      case 'F': {  // FLOAT (protocol 0)
        std::string l(in_.line("FLOAT"));
        char* end = nullptr;
        const double d = std::strtod(l.c_str(), &end);
        if (l.empty() || end != l.c_str() + l.size()) in_.fail(CKPT_ERR_FORMAT, at_, "FLOAT that is not a number");
        push(arena_.floating(d));
        return;
      }
      case 'X': {
        const uint32_t n = load_le<uint32_t>(in_.take(4, "BINUNICODE"));
        push(text(Kind::string, in_.take(n, "BINUNICODE"), true));
        return;
      }
      case 0x8c: {
        const uint8_t n = in_.byte("SHORT_BINUNICODE");
        push(text(Kind::string, in_.take(n, "SHORT_BINUNICODE"), true));
        return;
      }
      case 0x8d: {
        const uint64_t n = load_le<uint64_t>(in_.take(8, "BINUNICODE8"));
        push(text(Kind::string, in_.take(n, "BINUNICODE8"), true));
        return;
      }
      case 'T': {  // BINSTRING: a Python 2 str, kept as bytes
        const int32_t n = load_le<int32_t>(in_.take(4, "BINSTRING"));
        if (n < 0) in_.fail(CKPT_ERR_FORMAT, at_, "BINSTRING with a negative length");
        push(text(Kind::bytes, in_.take(static_cast<uint64_t>(n), "BINSTRING"), false));
        return;
      }
      case 'U': {
        const uint8_t n = in_.byte("SHORT_BINSTRING");
        push(text(Kind::bytes, in_.take(n, "SHORT_BINSTRING"), false));
        return;
      }
      case 'B': {
        const uint32_t n = load_le<uint32_t>(in_.take(4, "BINBYTES"));
        push(text(Kind::bytes, in_.take(n, "BINBYTES"), false));
        return;
      }
      case 'C': {
        const uint8_t n = in_.byte("SHORT_BINBYTES");
        push(text(Kind::bytes, in_.take(n, "SHORT_BINBYTES"), false));
        return;
      }
      case 0x8e:
      case 0x96: {  // BINBYTES8, BYTEARRAY8
        const uint64_t n = load_le<uint64_t>(in_.take(8, "BINBYTES8"));
        push(text(Kind::bytes, in_.take(n, "BINBYTES8"), false));
        return;
      }
      case 0x97:
      case 0x98:
        in_.fail(CKPT_ERR_UNSUPPORTED, at_, "an out-of-band buffer (pickle protocol 5 buffers live outside the file)");
      case ')': push(seq(Kind::tuple, {})); return;
      case 't': push(seq(Kind::tuple, pop_mark("TUPLE"))); return;
      case 0x85: {
        Obj* a = pop("TUPLE1");
        push(seq(Kind::tuple, {a}));
        return;
      }
      case 0x86: {
        Obj* b = pop("TUPLE2");
        Obj* a = pop("TUPLE2");
        push(seq(Kind::tuple, {a, b}));
        return;
      }
      case 0x87: {
        Obj* c = pop("TUPLE3");
        Obj* b = pop("TUPLE3");
        Obj* a = pop("TUPLE3");
        push(seq(Kind::tuple, {a, b, c}));
        return;
      }
      case ']': push(seq(Kind::list, {})); return;
      case 'l': push(seq(Kind::list, pop_mark("LIST"))); return;
      case 'a': {
        Obj* item = pop("APPEND");
        append_items(top("APPEND"), {item});
        return;
      }
      case 'e': {
        auto items = pop_mark("APPENDS");
        append_items(top("APPENDS"), items);
        return;
      }
      case 0x8f: {  // EMPTY_SET: a set is read as a list of its distinct members
        Seq* s = seq(Kind::list, {});
        s->is_set = true;
        push(s);
        return;
      }
      case 0x90: {  // ADDITEMS
        auto items = pop_mark("ADDITEMS");
        Obj* s = top("ADDITEMS");
        if (s->kind != Kind::list || !static_cast<Seq*>(s)->is_set)
          in_.fail(CKPT_ERR_FORMAT, at_, std::string("ADDITEMS to a ") + kind_name(s->kind) + " that is not a set");
        for (Obj* o : items) static_cast<Seq*>(s)->add(o);
        return;
      }
      case 0x91: {  // FROZENSET
        Seq* s = seq(Kind::list, {});
        s->is_set = true;
        for (Obj* o : pop_mark("FROZENSET")) s->add(o);
        push(s);
        return;
      }
      case '}': push(arena_.make<Dict>()); return;
      case 'd': {
        auto items = pop_mark("DICT");
        if (items.size() % 2) in_.fail(CKPT_ERR_FORMAT, at_, "DICT with an odd number of items");
        auto* d = arena_.make<Dict>();
        set_items(d, items);
        push(d);
        return;
      }
      case 's': {
        Obj* v = pop("SETITEM");
        Obj* k = pop("SETITEM");
        set_items(top("SETITEM"), {k, v});
        return;
      }
      case 'u': {
        auto items = pop_mark("SETITEMS");
        if (items.size() % 2) in_.fail(CKPT_ERR_FORMAT, at_, "SETITEMS with an odd number of items");
        set_items(top("SETITEMS"), items);
        return;
      }
      case 'c': {  // GLOBAL: "module\nname\n"
        std::string module(in_.line("GLOBAL"));
        std::string name(in_.line("GLOBAL"));
        global(std::move(module), std::move(name));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        Obj* n = pop("STACK_GLOBAL");
        Obj* m = pop("STACK_GLOBAL");
        std::string module = name_of(m, "STACK_GLOBAL's module");
        std::string name = name_of(n, "STACK_GLOBAL's name");
        global(std::move(module), std::move(name));
        return;
      }
      case 'R': {
        Obj* args = pop("REDUCE");
        Obj* callable = pop("REDUCE");
        if (args->kind != Kind::tuple) in_.fail(CKPT_ERR_FORMAT, at_, std::string("REDUCE with a ") + kind_name(args->kind) + " of arguments");
        push(policy_.reduce(arena_, callable, args, in_, at_));
        return;
      }
      case 0x81: {
        Obj* args = pop("NEWOBJ");
        Obj* cls = pop("NEWOBJ");
        if (args->kind != Kind::tuple) in_.fail(CKPT_ERR_FORMAT, at_, "NEWOBJ without a tuple of arguments");
        push(policy_.newobj(arena_, cls, args, in_, at_));
        return;
      }
      case 0x92: {
        pop("NEWOBJ_EX");  // keyword arguments: a record keeps none
        Obj* args = pop("NEWOBJ_EX");
        Obj* cls = pop("NEWOBJ_EX");
        if (args->kind != Kind::tuple) in_.fail(CKPT_ERR_FORMAT, at_, "NEWOBJ_EX without a tuple of arguments");
        push(policy_.newobj(arena_, cls, args, in_, at_));
        return;
      }
      case 'b': {
        Obj* state = pop("BUILD");
        Obj*& inst = top("BUILD");
        inst = policy_.build(arena_, inst, state, in_, at_);
        return;
      }
      case 'i': {  // INST calls the class it names, which may be any function
        std::string module(in_.line("INST"));
        std::string name(in_.line("INST"));
        refuse(in_, at_, module, name, "INST would call it");
      }
      case 'o': {
        auto items = pop_mark("OBJ");
        const Global* g = items.empty() ? nullptr : as_global(items[0]);
        if (g) refuse(in_, at_, g->module, g->name, "OBJ would call it");
        in_.fail(CKPT_ERR_UNSUPPORTED, at_, "OBJ (it calls whatever is on the stack)");
      }
      case 'Q': {
        Obj* pid = pop("BINPERSID");
        push(policy_.persistent_load(arena_, pid, in_, at_));
        return;
      }
      case 'P': in_.fail(CKPT_ERR_UNSUPPORTED, at_, "PERSID (a text persistent id)");
      case 'h': push(memo_get(in_.byte("BINGET"))); return;
      case 'j': push(memo_get(load_le<uint32_t>(in_.take(4, "LONG_BINGET")))); return;
      case 'g': push(memo_get(memo_index_text())); return;
      case 'q': memo_put(in_.byte("BINPUT")); return;
      case 'r': memo_put(load_le<uint32_t>(in_.take(4, "LONG_BINPUT"))); return;
      case 'p': memo_put(memo_index_text()); return;
      case 0x94: memo_put(memo_.size()); return;
      case 0x82:
      case 0x83:
      case 0x84: in_.fail(CKPT_ERR_UNSUPPORTED, at_, "an extension-registry code (EXT1/2/4) names a global ckpt cannot check");
      case 'S':
      case 'V': in_.fail(CKPT_ERR_UNSUPPORTED, at_, "a protocol 0 text string (ckpt reads binary pickles, protocol 2 and later)");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        in_.fail(CKPT_ERR_FORMAT, at_, std::string("unknown opcode ") + hex);
      }
    }
  }

  Input& in_;
  Policy& policy_;
  Arena& arena_;
  size_t at_ = 0;
  std::vector<Obj*> stack_;
  std::vector<size_t> marks_;
  const size_t max_objects_;
  std::unordered_map<uint64_t, Obj*> memo_;
};

}  // namespace

Obj* unpickle(Input& in, Policy& policy, Arena& arena) {
  Machine m(in, policy, arena);
  return m.run();
}

}  // namespace ckpt_pickle
