// C++ sugar for writing a ckpt format plugin. Header-only and compiled into the plugin, so the
// plugin depends on nothing of the host but plugin_abi.h. A plugin author derives a Writer and
// a Reader, describes the format in a struct, and names it in CKPT_DECLARE_PLUGIN:
//
//   struct MyFormat {
//     static constexpr const char* name = "myfmt";
//     static constexpr const char* long_name = "My format";
//     static std::vector<std::string> extensions() { return {".my"}; }
//     static std::vector<ckpt::sdk::Magic> magic() { return {{0, "MYF1"}}; }
//     static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | ...;
//     static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;
//     static int identify(std::span<const uint8_t> head, uint64_t file_size);
//     static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path,
//                                                           ckpt::sdk::Options& options);
//     static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path,
//                                                           ckpt::sdk::Options& options);
//   };
//   CKPT_DECLARE_PLUGIN("myfmt", "1.0.0", MyFormat)
//
// Exceptions thrown inside become statuses at the boundary (ckpt::sdk::guard); throw
// ckpt::sdk::Error with a code, or any std::exception (reported as an internal error).
#pragma once

#include <ckpt/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::sdk {

// ---- host and errors ----------------------------------------------------------------------

inline const ckpt_host_api*& host_slot() {
  static const ckpt_host_api* host = nullptr;
  return host;
}
inline const ckpt_host_api& host() { return *host_slot(); }

class Error : public std::runtime_error {
 public:
  Error(ckpt_status_code code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ckpt_status_code code() const noexcept { return code_; }

 private:
  ckpt_status_code code_;
};

[[noreturn]] inline void fail(ckpt_status_code code, const std::string& what) {
  throw Error(code, what);
}

// A status the host gave us through a visitor callback: passed back untouched.
struct HostStatus {
  ckpt_status* status;
};

template <class F>
ckpt_status* guard(F&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const HostStatus& s) {
    return s.status;
  } catch (const Error& e) {
    return host().make_status(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return host().make_status(CKPT_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return host().make_status(CKPT_ERR_INTERNAL, e.what());
  } catch (...) {
    return host().make_status(CKPT_ERR_INTERNAL, "unknown exception inside plugin");
  }
}

// ---- small helpers ----------------------------------------------------------------------

inline size_t dtype_size(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_C128:
      return 16;
    case CKPT_DTYPE_F64:
    case CKPT_DTYPE_I64:
    case CKPT_DTYPE_U64:
    case CKPT_DTYPE_C64:
      return 8;
    case CKPT_DTYPE_F32:
    case CKPT_DTYPE_I32:
    case CKPT_DTYPE_U32:
      return 4;
    case CKPT_DTYPE_F16:
    case CKPT_DTYPE_BF16:
    case CKPT_DTYPE_I16:
    case CKPT_DTYPE_U16:
      return 2;
    case CKPT_DTYPE_I8:
    case CKPT_DTYPE_U8:
    case CKPT_DTYPE_BOOL:
    case CKPT_DTYPE_F8_E4M3FN:
    case CKPT_DTYPE_F8_E5M2:
      return 1;
    default:
      return 0;
  }
}

// The size of each number in an element: a complex element is two, its real and imaginary parts.
inline size_t dtype_number_size(uint32_t dtype) {
  return dtype == CKPT_DTYPE_C64 || dtype == CKPT_DTYPE_C128 ? dtype_size(dtype) / 2 : dtype_size(dtype);
}

// The names the document model uses for dtypes; formats that store dtypes as text use these.
inline const char* dtype_name(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_F32: return "f32";
    case CKPT_DTYPE_F64: return "f64";
    case CKPT_DTYPE_F16: return "f16";
    case CKPT_DTYPE_BF16: return "bf16";
    case CKPT_DTYPE_I8: return "i8";
    case CKPT_DTYPE_U8: return "u8";
    case CKPT_DTYPE_I16: return "i16";
    case CKPT_DTYPE_I32: return "i32";
    case CKPT_DTYPE_I64: return "i64";
    case CKPT_DTYPE_BOOL: return "bool";
    case CKPT_DTYPE_U16: return "u16";
    case CKPT_DTYPE_U32: return "u32";
    case CKPT_DTYPE_U64: return "u64";
    case CKPT_DTYPE_F8_E4M3FN: return "f8_e4m3fn";
    case CKPT_DTYPE_F8_E5M2: return "f8_e5m2";
    case CKPT_DTYPE_C64: return "c64";
    case CKPT_DTYPE_C128: return "c128";
    case CKPT_DTYPE_Q4_0: return "q4_0";
    case CKPT_DTYPE_Q4_1: return "q4_1";
    case CKPT_DTYPE_Q5_0: return "q5_0";
    case CKPT_DTYPE_Q5_1: return "q5_1";
    case CKPT_DTYPE_Q8_0: return "q8_0";
    case CKPT_DTYPE_Q2_K: return "q2_k";
    case CKPT_DTYPE_Q3_K: return "q3_k";
    case CKPT_DTYPE_Q4_K: return "q4_k";
    case CKPT_DTYPE_Q5_K: return "q5_k";
    case CKPT_DTYPE_Q6_K: return "q6_k";
    default: return nullptr;
  }
}

// Element dtypes only (0 for a block dtype's name too): a format that stores dtypes by name
// holds whole elements, and a block dtype would need sizes it does not check.
inline uint32_t dtype_from_name(std::string_view s) {
  for (uint32_t d = CKPT_DTYPE_F32; d <= CKPT_DTYPE_LAST; ++d)
    if (dtype_size(d) && s == dtype_name(d)) return d;
  return 0;
}

// ggml's block-quantized dtypes (plugin_abi.h): a tensor's rows are runs of blocks.
inline bool is_block_dtype(uint32_t dtype) { return dtype >= CKPT_DTYPE_Q4_0 && dtype <= CKPT_DTYPE_Q6_K; }

// A dtype's unit of storage: `elements` consecutive elements of a row in `bytes` bytes (one
// element in dtype_size bytes for every dtype but the block ones); {0, 0} for an unknown dtype.
struct DtypeBlock {
  uint32_t elements = 0, bytes = 0;
};
inline DtypeBlock dtype_block(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_Q4_0: return {32, 18};
    case CKPT_DTYPE_Q4_1: return {32, 20};
    case CKPT_DTYPE_Q5_0: return {32, 22};
    case CKPT_DTYPE_Q5_1: return {32, 24};
    case CKPT_DTYPE_Q8_0: return {32, 34};
    case CKPT_DTYPE_Q2_K: return {256, 84};
    case CKPT_DTYPE_Q3_K: return {256, 110};
    case CKPT_DTYPE_Q4_K: return {256, 144};
    case CKPT_DTYPE_Q5_K: return {256, 176};
    case CKPT_DTYPE_Q6_K: return {256, 210};
    default: {
      const auto n = static_cast<uint32_t>(dtype_size(dtype));
      return {n ? 1u : 0u, n};
    }
  }
}

// Bytes of a shape at `itemsize`, or fails with `where` past 2^62. The non-zero dimensions
// are bounded alone as well: a zero would otherwise hide any product behind an empty tensor,
// and strides or element counts a consumer computes from the other dimensions overflow int64.
inline uint64_t checked_nbytes(std::span<const int64_t> shape, size_t itemsize,
                               const std::string& where) {
  bool empty = false;
  for (int64_t d : shape) empty = empty || d == 0;
  unsigned __int128 nonzero = itemsize;
  for (int64_t d : shape) {
    if (d < 0) fail(CKPT_ERR_FORMAT, where + ": negative dimension " + std::to_string(d));
    if (d == 0) continue;
    nonzero *= static_cast<uint64_t>(d);
    if (nonzero > (static_cast<unsigned __int128>(1) << 62))
      fail(CKPT_ERR_LIMIT, where + (empty ? ": tensor size overflows (its non-zero dimensions alone)"
                                          : ": tensor size overflows"));
  }
  return empty ? 0 : static_cast<uint64_t>(nonzero);
}

// Bytes of a tensor of `shape` and `dtype`, or fails naming `where`: an unknown dtype, a
// negative dimension, a size past 2^62, or a block dtype whose rows are not whole blocks (a
// scalar, or a last dimension that is not a multiple of the block).
inline uint64_t tensor_nbytes(std::span<const int64_t> shape, uint32_t dtype, const std::string& where) {
  const DtypeBlock b = dtype_block(dtype);
  if (!b.elements) fail(CKPT_ERR_FORMAT, where + ": unknown dtype " + std::to_string(dtype));
  if (b.elements == 1) return checked_nbytes(shape, b.bytes, where);
  if (shape.empty() || shape.back() < 0 || shape.back() % b.elements != 0)
    fail(CKPT_ERR_FORMAT, where + ": a " + dtype_name(dtype) + " tensor's last dimension must be a multiple of " +
                              std::to_string(b.elements) + " (its rows are whole blocks), not " +
                              (shape.empty() ? std::string("a scalar") : std::to_string(shape.back())));
  // A row's bytes stand for the last dimension and its itemsize, so that, as for any other dtype,
  // a zero leading dimension does not hide a row past 2^62 (nor one a zero row any leading
  // product). The row itself fits in 64 bits: a block is at most 34/32 bytes an element.
  const uint64_t row = static_cast<uint64_t>(shape.back()) / b.elements * b.bytes;
  const std::span<const int64_t> rows = shape.first(shape.size() - 1);
  if (row == 0) {
    checked_nbytes(rows, 1, where);
    return 0;
  }
  if (row > (uint64_t{1} << 62)) {
    bool empty = false;
    for (int64_t d : rows) empty = empty || d == 0;
    fail(CKPT_ERR_LIMIT, where + (empty ? ": tensor size overflows (its non-zero dimensions alone)" : ": tensor size overflows"));
  }
  return checked_nbytes(rows, static_cast<size_t>(row), where);
}

struct TensorInfo {
  std::string_view name;
  uint32_t dtype = 0;
  std::span<const int64_t> shape;
  uint64_t nbytes = 0;
  uint64_t id = 0;
};

struct Magic {
  uint64_t offset;
  std::string bytes;
};

// Options given to open_writer/open_reader. Every key must be consumed; an unknown key is an
// error naming it, so a typo never silently does nothing.
class Options {
 public:
  Options(const ckpt_option* opts, size_t n) {
    for (size_t i = 0; i < n; ++i) values_[opts[i].key] = opts[i].value;
  }
  std::string get(const std::string& key, const std::string& fallback) {
    used_.push_back(key);
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  void check_all_used(const char* format) const {
    for (const auto& [k, v] : values_) {
      bool used = false;
      for (const auto& u : used_) used = used || u == k;
      if (!used) {
        std::string known;
        for (const auto& u : used_) known += (known.empty() ? "" : ", ") + u;
        fail(CKPT_ERR_INVALID_ARGUMENT, std::string("unknown option '") + k + "' for format " +
                                            format + " (known: " +
                                            (known.empty() ? "none" : known) + ")");
      }
    }
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

// ---- the objects a plugin implements --------------------------------------------------------

class Writer {
 public:
  virtual ~Writer() = default;
  virtual void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) = 0;
  virtual void end_group() = 0;
  virtual void attribute(std::string_view name, const ckpt_value& value) = 0;
  virtual void tensor(const TensorInfo& info, std::span<const std::byte> data) = 0;
  virtual void finish() = 0;
  // The host has renamed the finished file into place as `path` (see ckpt_writer_api's
  // committed): a format with files of its own beside it removes those the file no longer uses.
  // Best effort: the host drops what it throws.
  virtual void committed(std::string_view /*path*/) {}
};

// What list() reports to; wraps the host's callbacks.
class Visitor {
 public:
  explicit Visitor(const ckpt_visitor* v) : v_(v) {}
  void begin_group(const std::string& name) const { check(v_->begin_group(v_->ctx, name.c_str())); }
  void end_group() const { check(v_->end_group(v_->ctx)); }
  void attribute(const std::string& name, const ckpt_value& value) const {
    check(v_->attribute(v_->ctx, name.c_str(), &value));
  }
  void tensor(const std::string& name, uint32_t dtype, std::span<const int64_t> shape,
              uint64_t nbytes, uint64_t id) const {
    tensor(name.c_str(), dtype, shape, nbytes, id);
  }
  // `name` is NUL-terminated.
  void tensor(const char* name, uint32_t dtype, std::span<const int64_t> shape, uint64_t nbytes, uint64_t id) const {
    ckpt_tensor_desc d{};
    d.struct_size = sizeof d;
    d.dtype = dtype;
    d.name = name;
    d.rank = static_cast<uint32_t>(shape.size());
    d.shape = shape.data();
    d.nbytes = nbytes;
    d.id = id;
    check(v_->tensor(v_->ctx, &d));
  }

 private:
  static void check(ckpt_status* s) {
    if (s) throw HostStatus{s};
  }
  const ckpt_visitor* v_;
};

class Reader {
 public:
  virtual ~Reader() = default;
  virtual void list(const Visitor& visitor) = 0;
  virtual void read_tensor(uint64_t id, std::span<std::byte> dst) = 0;
  // Only for formats with CKPT_CAP_MAP.
  virtual const void* map_tensor(uint64_t id) {
    (void)id;
    fail(CKPT_ERR_UNSUPPORTED, "this format cannot map tensors");
  }
  // Override where reading part of a tensor is cheaper than reading all of it (chunked or
  // compressed storage). The box is start[i] <= index < start[i] + count[i], already checked
  // against the shape; dst gets it in C order. The default makes the host read the whole tensor.
  virtual void read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                          std::span<std::byte> dst) {
    (void)id, (void)start, (void)count, (void)dst;
    fail(CKPT_ERR_UNSUPPORTED, "this format reads whole tensors only");
  }
};

// ---- value helpers ------------------------------------------------------------------------

inline ckpt_value make_bool(bool b) {
  ckpt_value v{};
  v.type = CKPT_VALUE_BOOL;
  v.u.b = b ? 1 : 0;
  return v;
}
inline ckpt_value make_int(int64_t i) {
  ckpt_value v{};
  v.type = CKPT_VALUE_INT64;
  v.u.i = i;
  return v;
}
inline ckpt_value make_float(double f) {
  ckpt_value v{};
  v.type = CKPT_VALUE_FLOAT64;
  v.u.f = f;
  return v;
}
inline ckpt_value make_string(std::string_view s) {
  ckpt_value v{};
  v.type = CKPT_VALUE_STRING;
  v.u.s = {s.data(), s.size()};
  return v;
}
inline ckpt_value make_bools(std::span<const uint8_t> a) {
  ckpt_value v{};
  v.type = CKPT_VALUE_BOOL_ARRAY;
  v.count = a.size();
  v.u.bools = a.data();
  return v;
}
inline ckpt_value make_ints(std::span<const int64_t> a) {
  ckpt_value v{};
  v.type = CKPT_VALUE_INT64_ARRAY;
  v.count = a.size();
  v.u.ints = a.data();
  return v;
}
inline ckpt_value make_floats(std::span<const double> a) {
  ckpt_value v{};
  v.type = CKPT_VALUE_FLOAT64_ARRAY;
  v.count = a.size();
  v.u.floats = a.data();
  return v;
}
// `a` must outlive the value (it points into it).
inline ckpt_value make_strings(std::span<const ckpt_str> a) {
  ckpt_value v{};
  v.type = CKPT_VALUE_STRING_ARRAY;
  v.count = a.size();
  v.u.strings = a.data();
  return v;
}

// ---- the C trampolines --------------------------------------------------------------------

namespace detail {

struct WriterBox {
  std::unique_ptr<Writer> impl;
};
struct ReaderBox {
  std::unique_ptr<Reader> impl;
};

inline Writer& W(ckpt_writer* w) { return *reinterpret_cast<WriterBox*>(w)->impl; }
inline Reader& R(ckpt_reader* r) { return *reinterpret_cast<ReaderBox*>(r)->impl; }

inline const ckpt_writer_api* writer_api() {
  static const ckpt_writer_api api = {
      sizeof(ckpt_writer_api),
      [](ckpt_writer* w, const char* name, uint64_t na, uint64_t nc) {
        return guard([&] { W(w).begin_group(name, na, nc); });
      },
      [](ckpt_writer* w) { return guard([&] { W(w).end_group(); }); },
      [](ckpt_writer* w, const char* name, const ckpt_value* v) {
        return guard([&] { W(w).attribute(name, *v); });
      },
      [](ckpt_writer* w, const ckpt_tensor_desc* d, const void* data) {
        return guard([&] {
          TensorInfo info{d->name, d->dtype, {d->shape, d->rank}, d->nbytes, d->id};
          W(w).tensor(info, {static_cast<const std::byte*>(data), d->nbytes});
        });
      },
      [](ckpt_writer* w) { return guard([&] { W(w).finish(); }); },
      [](ckpt_writer* w) { delete reinterpret_cast<WriterBox*>(w); },
      [](ckpt_writer* w, const char* path) { return guard([&] { W(w).committed(path); }); },
  };
  return &api;
}

// The buffer a plugin writes a tensor into. A host may pass NULL for an empty tensor (an empty
// std::vector's data()), and memcpy from or to NULL is undefined even for no bytes: every
// plugin's copy of zero bytes then gets a valid address instead.
inline std::span<std::byte> tensor_buffer(void* dst, uint64_t n) {
  static std::byte none[1];
  return {dst ? static_cast<std::byte*>(dst) : none, dst ? n : 0};
}

inline const ckpt_reader_api* reader_api(bool can_map) {
  static const ckpt_reader_api api = {
      sizeof(ckpt_reader_api),
      [](ckpt_reader* r, const ckpt_visitor* v) {
        return guard([&] { R(r).list(Visitor(v)); });
      },
      [](ckpt_reader* r, uint64_t id, void* dst, uint64_t n) {
        return guard([&] { R(r).read_tensor(id, tensor_buffer(dst, n)); });
      },
      [](ckpt_reader* r, uint64_t id, const void** data) {
        return guard([&] { *data = R(r).map_tensor(id); });
      },
      [](ckpt_reader* r) { delete reinterpret_cast<ReaderBox*>(r); },
      [](ckpt_reader* r, uint64_t id, uint32_t rank, const uint64_t* start, const uint64_t* count,
         void* dst, uint64_t n) {
        return guard([&] {
          R(r).read_slice(id, {start, rank}, {count, rank}, tensor_buffer(dst, n));
        });
      },
  };
  static const ckpt_reader_api api_nomap = {api.struct_size, api.list,    api.read_tensor,
                                            nullptr,         api.destroy, api.read_slice};
  return can_map ? &api : &api_nomap;
}

// Keeps the strings and arrays a ckpt_format points into alive for the library's lifetime.
template <class F>
struct FormatStatic {
  static const ckpt_format& get() {
    static std::vector<std::string> ext_store = F::extensions();
    static std::vector<const char*> ext_ptrs = [] {
      std::vector<const char*> p;
      for (auto& e : ext_store) p.push_back(e.c_str());
      p.push_back(nullptr);
      return p;
    }();
    static std::vector<Magic> magic_store = F::magic();
    static std::vector<ckpt_magic> magic_c = [] {
      std::vector<ckpt_magic> m;
      for (auto& x : magic_store)
        m.push_back({x.offset, reinterpret_cast<const uint8_t*>(x.bytes.data()),
                     static_cast<uint32_t>(x.bytes.size())});
      return m;
    }();
    static const ckpt_format fmt = {
        sizeof(ckpt_format),
        F::name,
        F::long_name,
        ext_ptrs.data(),
        magic_c.data(),
        static_cast<uint32_t>(magic_c.size()),
        F::capabilities,
        F::dtypes,
        0,
        [](const uint8_t* head, size_t len, uint64_t file_size) -> int {
          try {
            return F::identify({head, len}, file_size);
          } catch (...) {
            return 0;
          }
        },
        [](const char* path, const ckpt_option* o, size_t n, ckpt_writer** out,
           const ckpt_writer_api** api) {
          return guard([&] {
            Options opts(o, n);
            auto w = F::open_writer(path, opts);
            opts.check_all_used(F::name);
            *out = reinterpret_cast<ckpt_writer*>(new WriterBox{std::move(w)});
            *api = writer_api();
          });
        },
        [](const char* path, const ckpt_option* o, size_t n, ckpt_reader** out,
           const ckpt_reader_api** api) {
          return guard([&] {
            Options opts(o, n);
            auto r = F::open_reader(path, opts);
            opts.check_all_used(F::name);
            *out = reinterpret_cast<ckpt_reader*>(new ReaderBox{std::move(r)});
            *api = reader_api((F::capabilities & CKPT_CAP_MAP) != 0);
          });
        },
    };
    return fmt;
  }
};

template <class... Fs>
const ckpt_plugin_descriptor* describe(const ckpt_host_api* h, const char* name,
                                       const char* version) {
  if (!h || h->abi_version != CKPT_ABI_VERSION) return nullptr;
  host_slot() = h;
  static const ckpt_format formats[] = {FormatStatic<Fs>::get()...};
  static const ckpt_plugin_descriptor d = {sizeof(ckpt_plugin_descriptor), CKPT_ABI_VERSION,
                                           name, version, formats,
                                           static_cast<uint32_t>(sizeof...(Fs))};
  return &d;
}

}  // namespace detail
}  // namespace ckpt::sdk

#define CKPT_DECLARE_PLUGIN(NAME, VERSION, ...)                                      \
  extern "C" CKPT_PLUGIN_EXPORT const ckpt_plugin_descriptor* ckpt_plugin_entry_v1( \
      const ckpt_host_api* host) {                                                  \
    return ::ckpt::sdk::detail::describe<__VA_ARGS__>(host, NAME, VERSION);          \
  }
