#include "policies.hpp"

#include <ckpt/sdk_value.hpp>

#include <cctype>
#include <charconv>

namespace ckpt_pickle {

namespace {

bool is_any(const Global* g, std::initializer_list<std::string_view> modules, std::string_view name) {
  if (!g || g->name != name) return false;
  for (auto m : modules)
    if (g->module == m) return true;
  return false;
}

// numpy moved its internals from numpy.core to numpy._core in 2.0; pickles name either.
bool is_reconstruct(const Global* g) { return is_any(g, {"numpy.core.multiarray", "numpy._core.multiarray"}, "_reconstruct"); }
bool is_scalar(const Global* g) { return is_any(g, {"numpy.core.multiarray", "numpy._core.multiarray"}, "scalar"); }
bool is_frombuffer(const Global* g) { return is_any(g, {"numpy.core.numeric", "numpy._core.numeric"}, "_frombuffer"); }
bool is_dtype(const Global* g) { return is_any(g, {"numpy"}, "dtype"); }
bool is_ordered_dict(const Global* g) { return is_any(g, {"collections"}, "OrderedDict"); }
bool is_reconstructor(const Global* g) { return is_any(g, {"copyreg", "copy_reg"}, "_reconstructor"); }
bool is_object(const Global* g) { return is_any(g, {"builtins", "__builtin__"}, "object"); }

const Seq& tuple_of(const Obj* o, size_t min, size_t max, const char* what, const Input& in, size_t at) {
  const Seq* s = as_seq(o);
  if (!s || s->items.size() < min || s->items.size() > max)
    in.fail(CKPT_ERR_FORMAT, at, std::string(what) + ": expected a tuple of " + std::to_string(min) +
                                     (min == max ? "" : " to " + std::to_string(max)) + " items");
  return *s;
}

int64_t integer(const Obj* o, const char* what, const Input& in, size_t at) {
  const Scalar* s = as_scalar(o);
  if (!s || s->kind != Kind::integer) in.fail(CKPT_ERR_FORMAT, at, std::string(what) + " is not an int");
  return s->i;
}

std::vector<int64_t> shape_of(const Obj* o, const Input& in, size_t at) {
  const Seq* s = as_seq(o);
  if (!s) in.fail(CKPT_ERR_FORMAT, at, "an array shape that is not a tuple");
  std::vector<int64_t> out;
  for (const Obj* x : s->items) {
    const int64_t d = integer(x, "an array dimension", in, at);
    if (d < 0) in.fail(CKPT_ERR_FORMAT, at, "a negative array dimension " + std::to_string(d));
    out.push_back(d);
  }
  return out;
}

size_t itemsize_of(const DType& d) { return d.dtype ? ckpt::sdk::dtype_size(d.dtype) : d.itemsize; }

DType* make_dtype(Arena& arena, std::string_view spec, const Input& in, size_t at) {
  auto* d = arena.make<DType>();
  d->spec = std::string(spec);
  std::string_view s = spec;
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
    d->order = s[0];
    s.remove_prefix(1);
  }
  if (s.empty()) in.fail(CKPT_ERR_FORMAT, at, "an empty numpy dtype");
  const char kind = s[0];
  int size = 0;
  auto r = std::from_chars(s.data() + 1, s.data() + s.size(), size);
  if (s.size() > 1 && (r.ec != std::errc() || r.ptr != s.data() + s.size())) size = -1;
  struct K {
    char kind;
    int size;
    uint32_t dtype;
  };
  static constexpr K table[] = {{'f', 2, CKPT_DTYPE_F16}, {'f', 4, CKPT_DTYPE_F32}, {'f', 8, CKPT_DTYPE_F64},
                                {'i', 1, CKPT_DTYPE_I8},  {'u', 1, CKPT_DTYPE_U8},  {'i', 2, CKPT_DTYPE_I16},
                                {'i', 4, CKPT_DTYPE_I32}, {'i', 8, CKPT_DTYPE_I64}, {'b', 1, CKPT_DTYPE_BOOL},
                                {'u', 2, CKPT_DTYPE_U16}, {'u', 4, CKPT_DTYPE_U32}, {'u', 8, CKPT_DTYPE_U64},
                                {'c', 8, CKPT_DTYPE_C64}, {'c', 16, CKPT_DTYPE_C128}};
  for (const K& k : table)
    if (k.kind == kind && k.size == size) d->dtype = k.dtype;
  // Any other fixed-size dtype is kept as bytes: long double and its complex, bytes, str (4
  // bytes a character), void records. Objects ('O') are not bytes; datetimes carry a unit elsewhere.
  if (!d->dtype && size > 0 && std::string_view("iufcbSUV").find(kind) != std::string_view::npos)
    d->itemsize = static_cast<uint64_t>(size) * (kind == 'U' ? 4 : 1);
  return d;
}

void apply_byte_order(Array& a, const DType& d) {
  a.big_endian = d.order == '>' && itemsize_of(d) > 1;
}

void need_supported(const DType& d, const Input& in, size_t at) {
  if (!itemsize_of(d)) in.fail(CKPT_ERR_UNSUPPORTED, at, "an array of numpy dtype '" + d.spec + "' (Python objects, not bytes)");
}

std::vector<int64_t> strides_for(const std::vector<int64_t>& shape, bool fortran) {
  std::vector<int64_t> st(shape.size());
  int64_t step = 1;
  if (fortran) {
    for (size_t i = 0; i < shape.size(); ++i) {
      st[i] = step;
      step *= std::max<int64_t>(shape[i], 1);
    }
  } else {
    for (size_t i = shape.size(); i-- > 0;) {
      st[i] = step;
      step *= std::max<int64_t>(shape[i], 1);
    }
  }
  return st;
}

// Points `a` at `data` as a dense array of `shape` in C or Fortran order.
void fill_array(Array& a, const DType& d, std::vector<int64_t> shape, bool fortran, Obj* data, const Input& in, size_t at) {
  need_supported(d, in, at);
  d.used = true;
  const Text* bytes = as_text(data);
  if (!bytes || bytes->kind != Kind::bytes)
    in.fail(CKPT_ERR_FORMAT, at, std::string("array data that is a ") + kind_name(data->kind) + ", not bytes");
  const size_t item = itemsize_of(d);
  const uint64_t n = ckpt::sdk::checked_nbytes(shape, item, in.where(at));
  if (n != bytes->str().size())
    in.fail(CKPT_ERR_FORMAT, at, "an array of " + std::to_string(n) + " bytes (" + d.spec + ") given " +
                                     std::to_string(bytes->str().size()) + " bytes of data");
  a.offset = 0;
  a.base = data;
  a.numpy = true;
  a.where = in.where(at);
  if (!d.dtype || d.structured) {
    // Bytes in NumPy's own order, described by the dtype and shape NumPy gives them.
    a.dtype = CKPT_DTYPE_U8;
    // The spec with the byte order of the dtype's state, which is the one NumPy obeys.
    std::string_view base = d.spec;
    if (!base.empty() && std::string_view("<>|=").find(base[0]) != std::string_view::npos) base.remove_prefix(1);
    a.raw_spec = std::string(1, d.order == '=' ? '<' : d.order) + std::string(base);
    a.raw_fields = d.fields;
    a.raw_shape = std::move(shape);
    a.raw_fortran = fortran;
    a.shape = {static_cast<int64_t>(n)};
    a.strides = {1};
    return;
  }
  a.dtype = d.dtype;
  a.strides = strides_for(shape, fortran);
  a.shape = std::move(shape);
  apply_byte_order(a, d);
}

// Python 3 writes bytes under protocol 2 as _codecs.encode(str, 'latin1'): back to bytes.
Obj* latin1_bytes(Arena& arena, const Text& s, const Input& in, size_t at) {
  auto* out = arena.make<Text>(Kind::bytes);
  std::string_view u = s.str();
  out->owned.reserve(u.size());
  for (size_t i = 0; i < u.size();) {
    const auto c = static_cast<unsigned char>(u[i]);
    if (c < 0x80) {
      out->owned.push_back(static_cast<char>(c));
      ++i;
    } else if ((c >> 5) == 6 && i + 1 < u.size() && c <= 0xc3) {
      out->owned.push_back(static_cast<char>(((c & 0x1f) << 6) | (static_cast<unsigned char>(u[i + 1]) & 0x3f)));
      i += 2;
    } else {
      in.fail(CKPT_ERR_FORMAT, at, "_codecs.encode of a character outside latin-1");
    }
  }
  return out;
}

// str.encode('utf-8'): a str's own UTF-8, which Python refuses to give for a lone surrogate.
Obj* utf8_bytes(Arena& arena, const Text& s, const Input& in, size_t at) {
  if (!ckpt::sdk::valid_utf8(s.str())) in.fail(CKPT_ERR_FORMAT, at, "a str with a lone surrogate encoded to UTF-8 (Python refuses it)");
  auto* out = arena.make<Text>(Kind::bytes);
  out->view = s.str();
  return out;
}

Obj* record_state(Arena& arena, Record& r, Obj* state, const Input& in, size_t at) {
  auto take_dict = [&](const Obj* o) {
    const Dict* d = as_dict(o);
    if (!d) return false;
    for (const auto& [k, v] : d->entries) {
      // Python sets attributes from str keys only (setattr refuses bytes).
      const Text* key = as_text(k);
      if (!key || key->kind != Kind::string) in.fail(CKPT_ERR_FORMAT, at, "an attribute name that is a " + std::string(kind_name(k->kind)));
      r.set(std::string(key->str()), v);
    }
    return true;
  };
  if (take_dict(state)) return &r;
  // (dict or None, slots dict): __getstate__ of a class with __slots__.
  if (const Seq* s = as_seq(state); s && s->kind == Kind::tuple && s->items.size() == 2) {
    const bool first = s->items[0]->kind == Kind::none || take_dict(s->items[0]);
    if (first && (s->items[1]->kind == Kind::none || take_dict(s->items[1]))) return &r;
  }
  r.state = state;
  (void)arena;
  return &r;
}

// joblib writes each array's bytes right after the wrapper's BUILD, outside the pickle's
// opcodes (numpy_pickle.NumpyArrayWrapper.write_array): a padding length, that many bytes,
// then the data in the array's order.
Obj* joblib_array(Arena& arena, const Record& wrapper, Input& in, size_t at) {
  auto attr = [&](std::string_view n) -> Obj* { return wrapper.get(n); };
  const DType* d = as_dtype(attr("dtype"));
  Obj* shape = attr("shape");
  const Text* order = as_text(attr("order"));
  if (!d || !shape || !order) in.fail(CKPT_ERR_FORMAT, at, "a joblib array wrapper without dtype, shape and order");
  if (d->spec == "O8" || d->spec == "|O")
    in.fail(CKPT_ERR_UNSUPPORTED, at, "a joblib array of Python objects (its items are pickles of their own)");
  need_supported(*d, in, at);
  if (attr("numpy_array_alignment_bytes")) {
    const uint8_t pad = in.byte("joblib's padding length");
    in.take(pad, "joblib's padding");
  }
  std::vector<int64_t> dims = shape_of(shape, in, at);
  const uint64_t n = ckpt::sdk::checked_nbytes(dims, itemsize_of(*d), in.where(at));
  const size_t data_at = in.pos();
  auto bytes = in.take(n, "a joblib array's data");
  auto* t = arena.make<Text>(Kind::bytes);
  t->view = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!t->view.data()) t->view = std::string_view("", 0);
  auto* a = arena.make<Array>();
  fill_array(*a, *d, std::move(dims), order->str() == "F", t, in, data_at);
  return a;
}

// Calls kept as records of a call not made: constructors that rebuild data from data. An
// allow-list, not a list of what runs code: a pickle can reach code through any module that
// imports another (linecache.os.system), through private twins (_functools.partial) or through
// arguments (deque(starmap(system, ...))), and ckpt must not present such a file as data.
bool inert_call(const Global& g) {
  const std::string shown = display_name(g.module, g.name);
  // numpy's RandomState, Generator and bit generator constructors (a fitted estimator's
  // random_state), by their exact names.
  for (std::string_view f : {"numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__bit_generator_ctor",
                             "numpy.random._pickle.__generator_ctor"})
    if (shown == f) return true;
  // scikit-learn's extension types (a tree's Tree, a KDTree): a class named by a module of
  // sklearn, never a dotted or private name.
  if (g.module.rfind("sklearn.", 0) == 0 && !g.name.empty() && std::isupper(static_cast<unsigned char>(g.name[0])) &&
      g.name.find('.') == std::string::npos && g.module.find("..") == std::string::npos)
    return true;
  return false;
}

}  // namespace

Obj* NumpyPolicy::global(Arena& arena, const std::string& module, const std::string& name, Input&, size_t) {
  // Naming a global is harmless: it is never imported. What may be done with it is decided
  // when the pickle calls or instantiates it.
  return arena.make<Global>(module, name);
}

Obj* NumpyPolicy::reduce(Arena& arena, Obj* callable, Obj* args, Input& in, size_t at) {
  const Global* g = as_global(callable);
  if (!g) in.fail(CKPT_ERR_FORMAT, at, std::string("REDUCE calls a ") + kind_name(callable->kind));
  if (is_reconstruct(g)) {  // (ndarray, (0,), b'b'): an empty array that BUILD fills
    tuple_of(args, 3, 3, "_reconstruct", in, at);
    auto* a = arena.make<Array>();
    a->numpy = true;
    a->shape = {0};
    a->strides = {1};
    a->where = in.where(at);
    return a;
  }
  if (is_dtype(g)) {
    const Seq& a = tuple_of(args, 1, 3, "numpy.dtype", in, at);
    const Text* spec = as_text(a.items[0]);
    if (!spec) in.fail(CKPT_ERR_FORMAT, at, "numpy.dtype of a " + std::string(kind_name(a.items[0]->kind)));
    return make_dtype(arena, spec->str(), in, at);
  }
  if (is_scalar(g)) {
    const Seq& a = tuple_of(args, 1, 2, "numpy scalar", in, at);
    const DType* d = as_dtype(a.items[0]);
    if (!d) in.fail(CKPT_ERR_FORMAT, at, "a numpy scalar without a dtype");
    if (a.items.size() < 2 || !as_text(a.items[1]))
      in.fail(CKPT_ERR_UNSUPPORTED, at, "a numpy scalar of dtype '" + d->spec + "' that holds a Python object");
    need_supported(*d, in, at);
    std::string_view raw = as_text(a.items[1])->str();
    if (raw.size() != itemsize_of(*d))
      in.fail(CKPT_ERR_FORMAT, at, "a numpy " + d->spec + " scalar of " + std::to_string(raw.size()) + " bytes");
    // Read as a one-element array; the mapper turns it into a number.
    auto* bytes = arena.make<Text>(Kind::bytes);
    bytes->view = raw;
    auto* arr = arena.make<Array>();
    fill_array(*arr, *d, {}, false, bytes, in, at);
    arr->scalar = true;
    return arr;
  }
  if (is_frombuffer(g)) {  // protocol 5: (buffer, dtype, shape, order)
    const Seq& a = tuple_of(args, 4, 4, "_frombuffer", in, at);
    const DType* d = as_dtype(a.items[1]);
    const Text* order = as_text(a.items[3]);
    if (!d || !order) in.fail(CKPT_ERR_FORMAT, at, "_frombuffer without a dtype and an order");
    auto* arr = arena.make<Array>();
    fill_array(*arr, *d, shape_of(a.items[2], in, at), order->str() == "F", a.items[0], in, at);
    return arr;
  }
  if (is_ordered_dict(g)) {
    const Seq& a = tuple_of(args, 0, 1, "OrderedDict", in, at);
    auto* d = arena.make<Dict>();
    d->ordered = true;
    if (!a.items.empty()) {
      const Seq* pairs = as_seq(a.items[0]);
      if (!pairs) in.fail(CKPT_ERR_FORMAT, at, "OrderedDict of a " + std::string(kind_name(a.items[0]->kind)));
      for (const Obj* p : pairs->items) {
        const Seq* kv = as_seq(p);
        if (!kv || kv->items.size() != 2) in.fail(CKPT_ERR_FORMAT, at, "an OrderedDict item that is not a pair");
        d->put(kv->items[0], kv->items[1]);
      }
    }
    return d;
  }
  // set(iterable), as Python pickles a set under protocols 2 and 3 (4 has its own opcodes).
  if (is_any(g, {"builtins", "__builtin__"}, "set") || is_any(g, {"builtins", "__builtin__"}, "frozenset")) {
    const Seq& a = tuple_of(args, 0, 1, g->name.c_str(), in, at);
    auto* s = arena.make<Seq>(Kind::list);
    s->is_set = true;
    if (!a.items.empty()) {
      const Seq* from = as_seq(a.items[0]);
      if (!from) in.fail(CKPT_ERR_FORMAT, at, g->name + " of a " + std::string(kind_name(a.items[0]->kind)));
      for (Obj* x : from->items) s->add(x);
    }
    return s;
  }
  // collections.Counter is a dict of counts (MultiStepLR's milestones): read as that dict.
  if (is_any(g, {"collections"}, "Counter")) {
    const Seq& a = tuple_of(args, 0, 1, "Counter", in, at);
    auto* d = arena.make<Dict>();
    d->counter = true;
    if (!a.items.empty()) {
      const Dict* from = as_dict(a.items[0]);
      if (!from) in.fail(CKPT_ERR_FORMAT, at, "Counter of a " + std::string(kind_name(a.items[0]->kind)));
      for (const auto& [k, v] : from->entries) d->put(k, v);
    }
    return d;
  }
  if (is_any(g, {"_codecs"}, "encode")) {
    const Seq& a = tuple_of(args, 1, 2, "_codecs.encode", in, at);
    // Python's default encoding here is UTF-8, not latin-1: a str without one is read as what
    // Python makes of it, or refused.
    const Text* s = as_text(a.items[0]);
    const Text* enc = a.items.size() > 1 ? as_text(a.items[1]) : nullptr;
    if (!s || s->kind != Kind::string || (a.items.size() > 1 && !enc) || (enc && enc->str() != "latin1" && enc->str() != "latin-1"))
      in.fail(CKPT_ERR_UNSUPPORTED, at, "_codecs.encode other than of a str to latin1");
    if (!enc) return utf8_bytes(arena, *s, in, at);
    return latin1_bytes(arena, *s, in, at);
  }
  if (is_any(g, {"builtins", "__builtin__"}, "bytes") || is_any(g, {"builtins", "__builtin__"}, "bytearray")) {
    const Seq& a = tuple_of(args, 0, 2, g->name.c_str(), in, at);
    if (a.items.empty()) {
      auto* t = arena.make<Text>(Kind::bytes);
      t->view = std::string_view("", 0);
      return t;
    }
    const Text* s = as_text(a.items[0]);
    if (!s) in.fail(CKPT_ERR_UNSUPPORTED, at, g->name + " of a " + kind_name(a.items[0]->kind));
    if (s->kind == Kind::bytes) {
      if (a.items.size() > 1) in.fail(CKPT_ERR_FORMAT, at, g->name + " of bytes with an encoding (Python refuses it)");
      return a.items[0];
    }
    // bytes(str, encoding): the encodings whose bytes ckpt knows; Python refuses a str alone.
    const Text* enc = a.items.size() > 1 ? as_text(a.items[1]) : nullptr;
    if (!enc) in.fail(CKPT_ERR_FORMAT, at, g->name + " of a str without an encoding (Python refuses it)");
    const std::string e(enc->str());
    if (e == "latin1" || e == "latin-1" || e == "iso-8859-1") return latin1_bytes(arena, *s, in, at);
    if (e == "utf-8" || e == "utf8" || e == "utf_8") return utf8_bytes(arena, *s, in, at);
    in.fail(CKPT_ERR_UNSUPPORTED, at, g->name + " of a str in the encoding '" + e + "'");
  }
  if (is_reconstructor(g)) {  // protocols 0 and 1: copyreg._reconstructor(cls, object, None)
    const Seq& a = tuple_of(args, 3, 3, "copyreg._reconstructor", in, at);
    const Global* cls = as_global(a.items[0]);
    if (!cls) in.fail(CKPT_ERR_FORMAT, at, "copyreg._reconstructor of a " + std::string(kind_name(a.items[0]->kind)));
    if (!is_object(as_global(a.items[1])) || a.items[2]->kind != Kind::none)
      refuse(in, at, cls->module, cls->name, "rebuilding it would call its base class");
    return arena.make<Record>(cls->full());
  }
  if (!inert_call(*g))
    refuse(in, at, g->module, g->name,
           "a pickle may only call the NumPy array rebuilders ckpt knows, and numpy's and scikit-learn's data "
           "constructors, which it keeps as calls not made (objects are read as records of their attributes, "
           "never called)");
  // A call that rebuilds data is not made: it is kept as what it is, the callable's name and
  // its arguments.
  auto* r = arena.make<Record>(g->full());
  r->called = true;
  if (const Seq* a = as_seq(args); a && !a->items.empty()) r->args = args;
  return r;
}

Obj* NumpyPolicy::newobj(Arena& arena, Obj* cls, Obj* args, Input& in, size_t at) {
  const Global* g = as_global(cls);
  if (!g) in.fail(CKPT_ERR_FORMAT, at, std::string("NEWOBJ of a ") + kind_name(cls->kind));
  if (is_ordered_dict(g) || is_any(g, {"builtins", "__builtin__"}, "dict")) {
    auto* d = arena.make<Dict>();
    d->ordered = is_ordered_dict(g);
    return d;
  }
  if (is_any(g, {"builtins", "__builtin__"}, "list")) return arena.make<Seq>(Kind::list);
  if (is_any(g, {"builtins", "__builtin__"}, "set")) {
    auto* s = arena.make<Seq>(Kind::list);
    s->is_set = true;
    return s;
  }
  auto* r = arena.make<Record>(g->full());
  if (const Seq* a = as_seq(args); a && !a->items.empty()) r->args = args;
  return r;
}

Obj* NumpyPolicy::build(Arena& arena, Obj* inst, Obj* state, Input& in, size_t at) {
  switch (inst->kind) {
    case Kind::array: {
      auto* a = static_cast<Array*>(inst);
      if (!a->numpy || a->base) in.fail(CKPT_ERR_FORMAT, at, "BUILD on an array that is already built");
      // (version, shape, dtype, is_fortran, rawdata); version is absent in old pickles.
      const Seq& s = tuple_of(state, 4, 5, "the ndarray state", in, at);
      const size_t o = s.items.size() == 5 ? 1 : 0;
      const DType* d = as_dtype(s.items[o + 1]);
      const Scalar* fortran = as_scalar(s.items[o + 2]);
      if (!d || !fortran) in.fail(CKPT_ERR_FORMAT, at, "an ndarray state without a dtype");
      if (s.items[o + 3]->kind == Kind::list)
        in.fail(CKPT_ERR_UNSUPPORTED, at, "an array of Python objects (dtype '" + d->spec + "')");
      fill_array(*a, *d, shape_of(s.items[o], in, at), fortran->b || fortran->i, s.items[o + 3], in, at);
      return a;
    }
    case Kind::dtype: {
      // (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
      auto* d = static_cast<DType*>(inst);
      if (d->built || d->used) in.fail(CKPT_ERR_FORMAT, at, "a dtype set again after it was set or used (NumPy would read its arrays another way)");
      d->built = true;
      const Seq& s = tuple_of(state, 8, 9, "the dtype state", in, at);
      const Text* order = as_text(s.items[1]);
      if (!order || order->str().size() != 1) in.fail(CKPT_ERR_FORMAT, at, "a dtype without a byte order");
      d->order = order->str()[0];
      d->structured = s.items[3]->kind != Kind::none || s.items[2]->kind != Kind::none;
      // A record's fields with their dtypes and offsets; datetimes, whose unit is in metadata
      // ckpt does not read, are refused rather than kept without it.
      const Dict* fields = as_dict(s.items[4]);
      if (const Seq* names = as_seq(s.items[3]))
        for (const Obj* n : names->items) {
          const Text* t = as_text(n);
          const Seq* f = fields && t ? as_seq(fields->find(t->str())) : nullptr;
          const DType* fd = f && f->items.size() >= 2 ? as_dtype(f->items[0]) : nullptr;
          const Scalar* off = f && f->items.size() >= 2 ? as_scalar(f->items[1]) : nullptr;
          if (!fd || !off || off->kind != Kind::integer || (fd->structured && fd->fields.empty()))
            in.fail(CKPT_ERR_UNSUPPORTED, at, "a structured numpy dtype whose fields ckpt cannot describe");
          std::string_view base = fd->spec;
          if (!base.empty() && std::string_view("<>|=").find(base[0]) != std::string_view::npos) base.remove_prefix(1);
          d->fields.push_back(std::string(t->str()) + ":" + std::string(1, fd->order == '=' ? '<' : fd->order) + std::string(base) +
                              "@" + std::to_string(off->i));
        }
      const std::string_view sp = d->spec;
      if (sp.find('M') != std::string_view::npos || sp.find('m') != std::string_view::npos)
        in.fail(CKPT_ERR_UNSUPPORTED, at, "an array of numpy datetimes ('" + d->spec + "'), whose unit ckpt does not read");
      // A record's size is its elsize (its spec is "V<size>"); -1 means "from the spec".
      if (const Scalar* elsize = as_scalar(s.items[5]); elsize && elsize->kind == Kind::integer && elsize->i > 0 && d->structured)
        d->itemsize = static_cast<uint64_t>(elsize->i);
      if (d->structured) d->dtype = 0;
      return d;
    }
    case Kind::dict:
      static_cast<Dict*>(inst)->instance_state = state;
      return inst;
    case Kind::record: {
      auto* r = static_cast<Record*>(inst);
      record_state(arena, *r, state, in, at);
      if (r->cls == "joblib.numpy_pickle.NumpyArrayWrapper") return joblib_array(arena, *r, in, at);
      return r;
    }
    default:
      in.fail(CKPT_ERR_FORMAT, at, std::string("BUILD on a ") + kind_name(inst->kind));
  }
}

Obj* NumpyPolicy::persistent_load(Arena&, Obj*, Input& in, size_t at) {
  in.fail(CKPT_ERR_UNSUPPORTED, at, "a persistent id (only the program that wrote the pickle can resolve it)");
}

}  // namespace ckpt_pickle
