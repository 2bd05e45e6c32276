#include "gguf_reader.hpp"

#include "gguf_llama.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

namespace ckpt_gguf {

using ckpt::sdk::fail;
using ckpt::sdk::Value;

namespace {

std::string at_byte(uint64_t at) { return "at byte " + std::to_string(at); }

class Cursor {
 public:
  Cursor(std::span<const std::byte> b, uint64_t budget) : b_(b), budget_(budget) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return b_.size() - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > left())
      fail(CKPT_ERR_FORMAT, at_byte(pos_) + ": the file ends " + std::to_string(left()) + " bytes on, inside " + what +
                                " (" + std::to_string(n) + " bytes needed)");
  }
  template <class T>
  T scalar(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof v);  // little-endian hosts only (as the SDK)
    pos_ += sizeof v;
    return v;
  }
  uint32_t u32(const char* what) { return scalar<uint32_t>(what); }
  uint64_t u64(const char* what) { return scalar<uint64_t>(what); }
  // A GGUF string of at most `max` bytes (a limit of the spec's), checked against the file first.
  std::string_view string(const char* what, uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const uint64_t at = pos_;
    const uint64_t n = u64(what);
    if (n > max)
      fail(CKPT_ERR_FORMAT, at_byte(at) + ": " + what + " of " + std::to_string(n) + " bytes, over the spec's limit of " +
                                std::to_string(max));
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    spend(n + 32, what);
    return s;
  }
  // What the document costs (sdk_limits.hpp): a file of small arrays must not become a huge tree.
  void spend(uint64_t n, const char* what) {
    if (n > budget_)
      fail(CKPT_ERR_LIMIT, at_byte(pos_) + ": " + what + " takes the document past " + std::to_string(total_) +
                               " bytes (option max_document_bytes)");
    budget_ -= n;
  }
  void set_total(uint64_t t) { total_ = t; }

 private:
  std::span<const std::byte> b_;
  uint64_t pos_ = 0;
  uint64_t budget_;
  uint64_t total_ = 0;
};

// JSON text for the scalars of an array of arrays (the document has no nested arrays).
void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
}

template <class F>
void json_float(std::string& out, F f) {
  if (std::isnan(f)) {
    out += "NaN";
  } else if (std::isinf(f)) {
    out += f < 0 ? "-Infinity" : "Infinity";
  } else {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, f);
    out.append(buf, r.ptr);
  }
}

class KvParser {
 public:
  explicit KvParser(Cursor& c) : c_(c) {}

  // One value of `type` as JSON (inside an array of arrays); returns its type description.
  TypeDesc json_value(uint32_t type, std::string& out, int depth, const std::string& key) {
    switch (type) {
      case kU8: out += std::to_string(c_.scalar<uint8_t>("a u8")); break;
      case kI8: out += std::to_string(c_.scalar<int8_t>("an i8")); break;
      case kU16: out += std::to_string(c_.scalar<uint16_t>("a u16")); break;
      case kI16: out += std::to_string(c_.scalar<int16_t>("an i16")); break;
      case kU32: out += std::to_string(c_.scalar<uint32_t>("a u32")); break;
      case kI32: out += std::to_string(c_.scalar<int32_t>("an i32")); break;
      case kU64: out += std::to_string(c_.scalar<uint64_t>("a u64")); break;
      case kI64: out += std::to_string(c_.scalar<int64_t>("an i64")); break;
      case kF32: json_float(out, c_.scalar<float>("an f32")); break;
      case kF64: json_float(out, c_.scalar<double>("an f64")); break;
      case kBool: out += bool_at(key) ? "true" : "false"; break;
      case kString: json_string(out, c_.string("a string")); break;
      case kArray: return json_array(out, depth + 1, key);
      default: bad_type(type, key);
    }
    c_.spend(8, "an array element");
    return {type, 0};
  }

  // An array (its element type and count next) as JSON text.
  TypeDesc json_array(std::string& out, int depth, const std::string& key) {
    return json_elements(c_.u32("an array's element type"), out, depth, key);
  }
  // An array's count and elements of `type` as JSON text; returns the array's type.
  TypeDesc json_elements(uint32_t type, std::string& out, int depth, const std::string& key) {
    if (depth > kMaxArrayDepth)
      fail(CKPT_ERR_LIMIT, at_byte(c_.pos()) + ": key " + quote(key) + " nests arrays deeper than " +
                               std::to_string(kMaxArrayDepth));
    const uint64_t n = count(type, key);
    const size_t begin = out.size();
    out += '[';
    std::optional<TypeDesc> inner;
    for (uint64_t i = 0; i < n; ++i) {
      if (i) out += ',';
      const uint64_t at = c_.pos();
      TypeDesc t = json_value(type, out, depth, key);
      if (inner && !(*inner == t))
        fail(CKPT_ERR_UNSUPPORTED, at_byte(at) + ": key " + quote(key) + " is an array of arrays of different types (" +
                                       inner->name() + ", " + t.name() + "), which ckpt does not hold");
      inner = t;
    }
    out += ']';
    c_.spend(out.size() - begin, "an array's text");
    if (!inner) return {type, 1};  // empty: "array[T]", or "array[array]" for arrays
    return {inner->scalar, inner->depth + 1};
  }

  bool bool_at(const std::string& key) {
    const uint64_t at = c_.pos();
    const uint8_t b = c_.scalar<uint8_t>("a bool");
    if (b > 1)
      fail(CKPT_ERR_FORMAT, at_byte(at) + ": key " + quote(key) + ": a bool of value " + std::to_string(b) + " (0 or 1)");
    return b != 0;
  }

  [[noreturn]] void bad_type(uint32_t type, const std::string& key) {
    fail(CKPT_ERR_FORMAT, at_byte(c_.pos() - 4) + ": key " + quote(key) + " has value type " + std::to_string(type) +
                              " (GGUF's are 0 to 12)");
  }

  // An array's count, checked against the bytes its elements need at the least.
  uint64_t count(uint32_t type, const std::string& key) {
    if (type > kLastValueType) bad_type(type, key);
    const uint64_t at = c_.pos();
    const uint64_t n = c_.u64("an array's count");
    const uint64_t least = type == kString ? 8 : type == kArray ? 12 : value_type_size(type);
    if (n > c_.left() / least)
      fail(CKPT_ERR_FORMAT, at_byte(at) + ": key " + quote(key) + ": an array of " + std::to_string(n) + " " +
                                value_type_name(type) + " elements, more than the " + std::to_string(c_.left()) +
                                " bytes left in the file can hold");
    return n;
  }

  // The value of a key of `type`.
  void value(uint32_t type, KeyValue& kv) {
    Value& v = kv.value;
    kv.type = {type, 0};
    switch (type) {
      case kU8: v = Value::integer(c_.scalar<uint8_t>("a u8")); break;
      case kI8: v = Value::integer(c_.scalar<int8_t>("an i8")); break;
      case kU16: v = Value::integer(c_.scalar<uint16_t>("a u16")); break;
      case kI16: v = Value::integer(c_.scalar<int16_t>("an i16")); break;
      case kU32: v = Value::integer(c_.scalar<uint32_t>("a u32")); break;
      case kI32: v = Value::integer(c_.scalar<int32_t>("an i32")); break;
      case kI64: v = Value::integer(c_.scalar<int64_t>("an i64")); break;
      case kU64: {
        // Above INT64_MAX a document integer cannot hold it: kept as its decimal text.
        const uint64_t u = c_.scalar<uint64_t>("a u64");
        v = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? Value::string(std::to_string(u))
                                                                           : Value::integer(static_cast<int64_t>(u));
        break;
      }
      case kF32: v = Value::floating(c_.scalar<float>("an f32")); break;
      case kF64: v = Value::floating(c_.scalar<double>("an f64")); break;
      case kBool: v = Value::boolean(bool_at(kv.key)); break;
      case kString: v = Value::string(std::string(c_.string("a string value"))); break;
      case kArray: array(kv); break;
      default: bad_type(type, kv.key);
    }
  }

  void array(KeyValue& kv) {
    const uint32_t type = c_.u32("an array's element type");
    if (type == kArray) {  // arrays of arrays: JSON text, their type recorded
      std::string text;
      kv.type = json_elements(kArray, text, 1, kv.key);
      kv.value = Value::string(std::move(text));
      return;
    }
    const uint64_t n = count(type, kv.key);
    Value& v = kv.value;
    kv.type = {type, 1};
    switch (type) {
      case kBool:
        v.type = CKPT_VALUE_BOOL_ARRAY;
        c_.spend(n, "a bool array");
        v.bools.reserve(n);
        for (uint64_t i = 0; i < n; ++i) v.bools.push_back(bool_at(kv.key) ? 1 : 0);
        break;
      case kF32:
      case kF64:
        v.type = CKPT_VALUE_FLOAT64_ARRAY;
        c_.spend(8 * n, "a float array");
        v.floats.reserve(n);
        for (uint64_t i = 0; i < n; ++i)
          v.floats.push_back(type == kF32 ? c_.scalar<float>("an f32") : c_.scalar<double>("an f64"));
        break;
      case kString:
        v.type = CKPT_VALUE_STRING_ARRAY;
        v.strings.reserve(n);
        for (uint64_t i = 0; i < n; ++i) v.strings.emplace_back(c_.string("a string element"));
        break;
      default: {
        v.type = CKPT_VALUE_INT64_ARRAY;
        c_.spend(8 * n, "an integer array");
        v.ints.reserve(n);
        bool big = false;
        std::vector<uint64_t> raw;
        for (uint64_t i = 0; i < n; ++i) {
          switch (type) {
            case kU8: v.ints.push_back(c_.scalar<uint8_t>("a u8")); break;
            case kI8: v.ints.push_back(c_.scalar<int8_t>("an i8")); break;
            case kU16: v.ints.push_back(c_.scalar<uint16_t>("a u16")); break;
            case kI16: v.ints.push_back(c_.scalar<int16_t>("an i16")); break;
            case kU32: v.ints.push_back(c_.scalar<uint32_t>("a u32")); break;
            case kI32: v.ints.push_back(c_.scalar<int32_t>("an i32")); break;
            case kI64: v.ints.push_back(c_.scalar<int64_t>("an i64")); break;
            default: {  // u64
              const uint64_t u = c_.scalar<uint64_t>("a u64");
              big = big || u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
              v.ints.push_back(static_cast<int64_t>(u));
            }
          }
        }
        if (big) {  // decimal texts, as a u64 scalar above INT64_MAX
          v.type = CKPT_VALUE_STRING_ARRAY;
          for (int64_t i : v.ints) v.strings.push_back(std::to_string(static_cast<uint64_t>(i)));
          v.ints.clear();
        }
      }
    }
  }

 private:
  Cursor& c_;
};

}  // namespace
}  // namespace ckpt_gguf

namespace ckpt_gguf {

namespace {

// "2,3,4" -> {2, 3, 4}
std::optional<std::vector<int64_t>> parse_dims(std::string_view s) {
  std::vector<int64_t> out;
  if (s.empty()) return out;
  size_t i = 0;
  while (true) {
    int64_t d = 0;
    auto r = std::from_chars(s.data() + i, s.data() + s.size(), d);
    if (r.ec != std::errc() || d < 0) return std::nullopt;
    out.push_back(d);
    i = static_cast<size_t>(r.ptr - s.data());
    if (i == s.size()) return out;
    if (s[i] != ',' || out.size() > 64) return std::nullopt;
    ++i;
  }
}

}  // namespace

Parsed parse(std::span<const std::byte> file, uint64_t file_size, const ckpt::sdk::ReadLimits& limits, uint64_t max_alignment) {
  const uint64_t total = limits.document_bytes_for(file_size);
  Cursor c(file, total);
  c.set_total(total);
  Parsed p;
  c.need(4, "the magic");
  if (std::memcmp(file.data(), kMagic, 4) != 0) fail(CKPT_ERR_FORMAT, "at byte 0: no GGUF magic");
  c.u32("the magic");
  p.version = c.u32("the version");
  if (p.version == 1)
    fail(CKPT_ERR_UNSUPPORTED, "at byte 4: GGUF version 1 (32-bit counts, from before August 2023); ckpt reads 2 and 3");
  if (p.version != 2 && p.version != 3) {
    const bool swapped = p.version == 0x02000000u || p.version == 0x03000000u;
    fail(CKPT_ERR_UNSUPPORTED, "at byte 4: GGUF version " + std::to_string(p.version) +
                                   (swapped ? " (a big-endian file, which ckpt does not read)" : "; ckpt reads 2 and 3"));
  }
  const uint64_t n_tensors = c.u64("the tensor count");
  const uint64_t n_kv = c.u64("the key-value count");
  // The least each needs: a key-value 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > c.left() / 13)
    fail(CKPT_ERR_FORMAT, "at byte 16: " + std::to_string(n_kv) + " key-values, more than the " +
                              std::to_string(c.left()) + " bytes after the header can hold");
  if (n_tensors > c.left() / 24)
    fail(CKPT_ERR_FORMAT, "at byte 8: " + std::to_string(n_tensors) + " tensors, more than the " +
                              std::to_string(c.left()) + " bytes after the header can hold");

  KvParser kvp(c);
  std::unordered_set<std::string> keys;
  std::vector<KeyValue> all;
  all.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    KeyValue kv;
    kv.at = c.pos();
    kv.key = std::string(c.string("a key", kMaxKeyBytes));
    if (!keys.insert(kv.key).second) fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": key " + quote(kv.key) + " repeats");
    if (kv.key == kTypesAttribute || kv.key == kVersionAttribute)
      fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": key " + quote(kv.key) + " (ckpt's name for what it records; ':' is no key's)");
    kvp.value(c.u32("a value type"), kv);
    all.push_back(std::move(kv));
  }

  // general.alignment: a u32 (ggml reads it with gguf_get_val_u32, which asserts on any other
  // type), a power of two (as ggml checks), at most max_alignment (ckpt's bound).
  for (const KeyValue& kv : all) {
    if (kv.key != kAlignmentKey) continue;
    if (kv.type.depth != 0 || kv.type.scalar != kU32)
      fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": key general.alignment has type " + kv.type.name() +
                                "; GGUF's is a u32 (ggml refuses any other type)");
    if (kv.value.i <= 0 || (kv.value.i & (kv.value.i - 1)) != 0)
      fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": key general.alignment must be a power of two, not " + std::to_string(kv.value.i));
    if (static_cast<uint64_t>(kv.value.i) > max_alignment)
      fail(CKPT_ERR_LIMIT, at_byte(kv.at) + ": key general.alignment is " + std::to_string(kv.value.i) + ", over ckpt's bound of " +
                               std::to_string(max_alignment) + " (option max_alignment raises it, up to 2^30)");
    p.alignment = static_cast<uint64_t>(kv.value.i);
  }

  std::unordered_map<std::string, size_t> by_name;
  std::vector<TensorEntry> infos;
  infos.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorEntry t;
    t.at = c.pos();
    t.gguf_name = std::string(c.string("a tensor name", kMaxNameBytes));
    const std::string where = "tensor " + quote(t.gguf_name) + " (info " + at_byte(t.at) + ")";
    // ggml keeps a name in 64 bytes with its NUL, and stops at a NUL inside it: such a name
    // would read as another (or as a repeat) in ggml.
    if (t.gguf_name.size() > kMaxWrittenNameBytes)
      fail(CKPT_ERR_FORMAT, where + ": a name of " + std::to_string(t.gguf_name.size()) + " bytes; ggml refuses names of more than " +
                                std::to_string(kMaxWrittenNameBytes) + " (GGML_MAX_NAME, 64 with the NUL)");
    if (const size_t nul = t.gguf_name.find('\0'); nul != std::string::npos)
      fail(CKPT_ERR_FORMAT, where + ": the name holds a NUL byte, so ggml reads it as " + quote(t.gguf_name.substr(0, nul)));
    if (!by_name.emplace(t.gguf_name, infos.size()).second) fail(CKPT_ERR_FORMAT, where + ": the name repeats");
    const uint32_t n_dims = c.u32("a tensor's dimension count");
    if (n_dims > kMaxDims)
      fail(CKPT_ERR_FORMAT, where + ": " + std::to_string(n_dims) + " dimensions; GGUF tensors have at most " +
                                std::to_string(kMaxDims));
    t.shape.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.u64("a tensor's dimension");
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(CKPT_ERR_FORMAT, where + ": dimension " + std::to_string(d) + " is " + std::to_string(dim));
      t.shape[n_dims - 1 - d] = static_cast<int64_t>(dim);  // GGUF lists the innermost first
    }
    // ggml's checks: ne[1..3] divide (a 0 there is a division by zero in ggml's reader), and
    // the element count must stay below INT64_MAX, tested as ggml tests it.
    int64_t ne[kMaxDims] = {1, 1, 1, 1};
    for (uint32_t d = 0; d < n_dims; ++d) ne[d] = t.shape[n_dims - 1 - d];
    for (uint32_t d = 1; d < kMaxDims; ++d)
      if (ne[d] == 0)
        fail(CKPT_ERR_FORMAT, where + ": dimension " + std::to_string(d) + " (ne[" + std::to_string(d) +
                                  "]) is 0; ggml's reader divides by ne[1..3] (only ne[0] may be 0)");
    // ggml's test, with its products checked: each is reached only when the previous test
    // bounded it, but signed overflow is undefined behaviour, so the bound is not left implicit.
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    int64_t ne01 = 0, ne012 = 0;
    if (kMax / ne[1] <= ne[0] || __builtin_mul_overflow(ne[0], ne[1], &ne01) || kMax / ne[2] <= ne01 ||
        __builtin_mul_overflow(ne01, ne[2], &ne012) || kMax / ne[3] <= ne012)
      fail(CKPT_ERR_FORMAT, where + ": dimensions (" + std::to_string(ne[0]) + ", " + std::to_string(ne[1]) + ", " +
                                std::to_string(ne[2]) + ", " + std::to_string(ne[3]) + ") make INT64_MAX elements or more");
    const uint64_t type_at = c.pos();
    t.ggml_type = c.u32("a tensor's type");
    const auto block = ggml_block(t.ggml_type);
    if (!block)
      fail(CKPT_ERR_FORMAT, where + ", " + at_byte(type_at) + ": " + ggml_type_name(t.ggml_type) +
                                " is no ggml type ggml reads (unknown, or retired)");
    if (ne[0] % static_cast<int64_t>(block->elements) != 0)
      fail(CKPT_ERR_FORMAT, where + ": rows of " + std::to_string(ne[0]) + " elements, not whole blocks of " +
                                std::to_string(block->elements) + " (ggml type " + ggml_type_name(t.ggml_type) + ")");
    // Any type's size, so that the offsets of the tensors ckpt does not hold are checked too.
    // ggml's test passes whatever ne[1..3] are when ne[0] is 0: the rows are bounded alone,
    // as ckpt bounds the non-zero dimensions of every tensor, so an empty tensor hides no
    // product that strides computed from the other dimensions would overflow.
    uint64_t rows = 0, row = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(ne[1]), static_cast<uint64_t>(ne[2]), &rows) ||
        __builtin_mul_overflow(rows, static_cast<uint64_t>(ne[3]), &rows) || rows > (uint64_t{1} << 62) ||
        __builtin_mul_overflow(static_cast<uint64_t>(ne[0]) / block->elements, uint64_t{block->bytes}, &row) ||
        row > (uint64_t{1} << 62) || __builtin_mul_overflow(rows, row, &t.nbytes) || t.nbytes >= (uint64_t{1} << 62))
      fail(CKPT_ERR_LIMIT, where + ": a tensor of 2^62 bytes or more, past ckpt's bound (dimensions (" + std::to_string(ne[0]) +
                               ", " + std::to_string(ne[1]) + ", " + std::to_string(ne[2]) + ", " + std::to_string(ne[3]) +
                               "), counted without a 0 in ne[0])");
    t.offset = c.u64("a tensor's offset");
    t.dtype = dtype_of_ggml(t.ggml_type);
    if (t.dtype) t.nbytes = ckpt::sdk::tensor_nbytes(t.shape, t.dtype, where);
    c.spend(128 + 8 * n_dims + t.gguf_name.size(), "a tensor info");
    infos.push_back(std::move(t));
  }
  p.data_start = align_up(c.pos(), p.alignment);
  const uint64_t size = file_size;
  const uint64_t data_size = p.data_start <= size ? size - p.data_start : 0;

  // Every tensor where ggml expects it (right after the one before, padded to the alignment:
  // no gaps, no other order, so none overlap) and inside the file.
  uint64_t expected = 0;
  for (size_t i = 0; i < infos.size(); ++i) {
    const TensorEntry& t = infos[i];
    const std::string where = "tensor " + quote(t.gguf_name) + " (info " + at_byte(t.at) + ")";
    if (t.offset % p.alignment != 0)
      fail(CKPT_ERR_FORMAT, where + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                                std::to_string(p.alignment));
    if (t.offset != expected)
      fail(CKPT_ERR_FORMAT, where + ": offset " + std::to_string(t.offset) + ", where ggml expects " + std::to_string(expected) +
                                " (each tensor right after the one before, padded to the alignment " +
                                std::to_string(p.alignment) + ")");
    expected += align_up(t.nbytes, p.alignment);  // below 2^63: the one before is inside the file, this one below 2^62
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(CKPT_ERR_FORMAT, where + ": its " + std::to_string(t.nbytes) + " bytes at offset " + std::to_string(t.offset) +
                                " (file byte " + std::to_string(p.data_start + t.offset) + ") run past the end of the file (" +
                                std::to_string(size) + " bytes)");
  }

  // ckpt's record of hashes: the four keys of the writer's types, or none. A damaged key name
  // (one under the prefix that is none of them, or one missing) is refused, never read as an
  // ordinary key: the file would then pass for one without hashes.
  auto is_record = [](const KeyValue& kv) { return kv.key.compare(0, kIntegrityPrefix.size(), kIntegrityPrefix) == 0; };
  {
    IntegrityRecord rec;
    int found = 0;
    uint64_t first_at = 0;
    for (const KeyValue& kv : all) {
      if (!is_record(kv)) continue;
      if (!found++) first_at = kv.at;
      const bool str = kv.type == TypeDesc{kString, 0}, strs = kv.type == TypeDesc{kString, 1};
      if (kv.key == kIntegrityAlgorithmKey && str) rec.algorithm = kv.value.s;
      else if (kv.key == kIntegrityManifestKey && str) rec.manifest = kv.value.s;
      else if (kv.key == kIntegrityEncodingKey && str) rec.encoding = kv.value.s;
      else if (kv.key == kIntegrityDigestsKey && strs) rec.digests = kv.value.strings;
      else
        fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": key " + quote(kv.key) + " (" + kv.type.name() + ") is none of ckpt's record of "
                                  "hashes (ckpt.integrity.algorithm, .manifest, .manifest_encoding: strings; .digests: an "
                                  "array of strings)");
    }
    if (found && found != 4)
      fail(CKPT_ERR_FORMAT, at_byte(first_at) + ": ckpt's record of hashes has " + std::to_string(found) +
                                " of its 4 keys (ckpt.integrity.*): a damaged record");
    if (found) p.integrity = std::move(rec);
  }

  // ckpt's own keys: document names GGUF could not hold, shapes of more than 4 dimensions.
  // Each is taken only in the form ckpt's writer gives it, so that a file reads as ggml reads
  // it: a name only for the GGUF name the writer makes of it (shortened_name), a shape only of
  // more than 4 dimensions and only for the dimensions the writer folds it to. Anything else
  // is refused: a file that renames or reshapes its tensors for ckpt alone is no file of ours.
  for (const KeyValue& kv : all) {
    if (kv.key != kNamesKey && kv.key != kShapesKey) continue;
    const std::string key(kv.key);
    if (kv.value.type != CKPT_VALUE_STRING_ARRAY || kv.value.strings.size() % 2 != 0)
      fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": key " + key + " must be an array of strings in pairs");
    const auto& s = kv.value.strings;
    std::unordered_set<std::string> seen;
    for (size_t k = 0; k < s.size(); k += 2) {
      const std::string head = at_byte(kv.at) + ": key " + key + ", tensor " + quote(s[k]) + ": ";
      auto it = by_name.find(s[k]);
      if (it == by_name.end()) fail(CKPT_ERR_FORMAT, head + "the file has no such tensor");
      if (!seen.insert(s[k]).second) fail(CKPT_ERR_FORMAT, head + "named twice");
      TensorEntry& t = infos[it->second];
      if (kv.key == kNamesKey) {
        const std::string& doc = s[k + 1];
        bool ours = !doc.empty() && doc.find('/') == std::string::npos && doc.find('\0') == std::string::npos;
        const std::string full = ours ? gguf_name_of(doc) : std::string();
        ours = ours && full.size() > kMaxWrittenNameBytes;
        // The writer tries salts from 0 until the name is unused: at most one per tensor.
        bool matched = false;
        for (uint64_t salt = 0; ours && !matched && salt <= infos.size(); ++salt) matched = shortened_name(full, salt) == t.gguf_name;
        if (!matched)
          fail(CKPT_ERR_FORMAT, head + "the name " + quote(doc) + " is not one ckpt's writer shortens to " + quote(t.gguf_name) +
                                    " (ggml reads the tensor as " + quote(t.gguf_name) + ")");
        t.name = doc;
        continue;
      }
      // The writer's rules: a shape with a 0 before its last dimension is written as dims (0)
      // (ggml divides by ne[1..3]); one of more than 4 dimensions as (s[n-1], s[n-2], s[n-3],
      // s[0] * ... * s[n-4]), innermost first: read, [outer, s[n-3], s[n-2], s[n-1]].
      auto dims = parse_dims(s[k + 1]);
      bool ours = dims && t.dtype && !dims->empty();
      if (ours) {
        const size_t n = dims->size();
        const bool zero_outer = std::find(dims->begin(), dims->end() - 1, 0) != dims->end() - 1;
        if (zero_outer) {
          ours = t.shape == std::vector<int64_t>{0};
        } else {
          ours = n > kMaxDims && t.shape.size() == kMaxDims;
          uint64_t outer = 1;
          for (size_t d = 0; ours && d + 3 < n; ++d)
            ours = !__builtin_mul_overflow(outer, static_cast<uint64_t>((*dims)[d]), &outer);
          ours = ours && outer == static_cast<uint64_t>(t.shape[0]) && (*dims)[n - 3] == t.shape[1] &&
                 (*dims)[n - 2] == t.shape[2] && (*dims)[n - 1] == t.shape[3];
        }
      }
      if (!ours)
        fail(CKPT_ERR_FORMAT, head + "the shape " + quote(s[k + 1]) + " is not one ckpt's writer writes as the tensor's dimensions " +
                                  "(more than 4 folded into 4, or a 0 before the last as (0))");
      ckpt::sdk::tensor_nbytes(*dims, t.dtype, "tensor " + quote(s[k]));  // a block dtype's rows whole
      t.shape = std::move(*dims);
    }
  }

  // A padding key is the writer's filler (a string of spaces) or, if not, an ordinary key.
  auto is_filler = [](const KeyValue& kv) {
    return kv.key == kPaddingKey && kv.type == TypeDesc{kString, 0} &&
           kv.value.s.find_first_not_of(' ') == std::string::npos;
  };

  // A llama file's attn_q and attn_k rows are in llama.cpp's rotary order; the document holds
  // Hugging Face's (so .pt -> GGUF -> safetensors keeps every tensor), and the writer puts them
  // back (so GGUF -> GGUF is byte for byte). That takes the head counts.
  const KeyValue* arch = nullptr;
  std::optional<uint64_t> heads, heads_kv;
  for (const KeyValue& kv : all) {
    if (kv.key == "general.architecture" && kv.value.type == CKPT_VALUE_STRING) arch = &kv;
    const bool count = kv.type.depth == 0 && is_integer_type(kv.type.scalar) && kv.value.type == CKPT_VALUE_INT64 && kv.value.i > 0;
    if (kv.key == "llama.attention.head_count" && count) heads = static_cast<uint64_t>(kv.value.i);
    if (kv.key == "llama.attention.head_count_kv" && count) heads_kv = static_cast<uint64_t>(kv.value.i);
  }
  if (!heads_kv) heads_kv = heads;  // as llama.cpp reads a file without the key
  if (arch && arch->value.s == "llama")
    for (TensorEntry& t : infos) {
      const char kind = rotary_kind(t.gguf_name);
      if (!kind || !t.dtype || t.shape.empty() || t.nbytes == 0) continue;
      const std::string where = "tensor " + quote(t.gguf_name) + " (info " + at_byte(t.at) + ")";
      const std::optional<uint64_t> h = kind == 'q' ? heads : heads_kv;
      if (!h)
        fail(CKPT_ERR_FORMAT, where + ": a llama file's attention rows are in llama.cpp's rotary order, per head, and the "
                                      "file has no key llama.attention.head_count to undo it");
      const auto rows = static_cast<uint64_t>(t.shape[0]);
      if (rows % (2 * *h) != 0)
        fail(CKPT_ERR_FORMAT, where + ": " + std::to_string(rows) + " rows are no whole heads of " + std::to_string(*h) +
                                  " with an even number of rows each (llama.attention.head_count" + (kind == 'k' ? "_kv" : "") + ")");
      t.head_rows = rows / *h;
    }

  std::unordered_set<std::string> names;
  for (TensorEntry& t : infos) {
    if (t.name.empty()) t.name = document_name(t.gguf_name);
    if (!t.dtype) {
      p.unread.push_back("tensor " + t.gguf_name + ": ggml type " + ggml_type_name(t.ggml_type) +
                         ", which ckpt does not hold");
      continue;
    }
    if (!names.insert(t.name).second)
      fail(CKPT_ERR_FORMAT, "tensor " + quote(t.gguf_name) + " (info " + at_byte(t.at) + "): two tensors are named " + quote(t.name));
    p.tensors.push_back(std::move(t));
  }
  // The tensors ckpt does not hold are named in the group meta (meta/@unread): a tensor named
  // meta takes that name, and they would go unnamed. Refused, naming them.
  if (!p.unread.empty() && names.count("meta")) {
    std::string list;
    for (const auto& u : p.unread) list += (list.empty() ? "" : "; ") + u;
    fail(CKPT_ERR_UNSUPPORTED, "a tensor is named 'meta', the group in which ckpt names the tensors it does not hold, so "
                               "they cannot be named: " + list);
  }

  // The record's digests pair with the tensors ckpt holds, in file order; its group is meta's.
  if (p.integrity) {
    const size_t n = p.integrity->digests.size();
    if (n != p.tensors.size())
      fail(CKPT_ERR_FORMAT, "key " + std::string(kIntegrityDigestsKey) + ": " + std::to_string(n) + " digests for the " +
                                std::to_string(p.tensors.size()) + " tensors ckpt reads in the file (a damaged record, or "
                                "a tensor's type changed)");
    if (names.count("meta"))
      fail(CKPT_ERR_FORMAT, "a tensor is named 'meta', the group in which ckpt gives back its record of hashes "
                            "(ckpt's writer records none for such a file)");
  }

  std::unordered_set<std::string> attribute_names;
  for (KeyValue& kv : all) {
    if (kv.key == kNamesKey || kv.key == kShapesKey || is_filler(kv) || is_record(kv)) continue;
    const TypeDesc def = default_type(kv.key, kv.value.type);
    if (!(def == kv.type)) {
      p.types.push_back(kv.key);
      p.types.push_back(kv.type.name());
    }
    kv.key = document_name(kv.key);
    if (!attribute_names.insert(kv.key).second)
      fail(CKPT_ERR_FORMAT, at_byte(kv.at) + ": two keys read as attribute " + quote(kv.key));
    p.kvs.push_back(std::move(kv));
  }
  return p;
}

GgufReader::GgufReader(const std::string& path, const ckpt::sdk::ReadLimits& limits, uint64_t max_alignment)
    : file_(path), parsed_(parse(file_.bytes(), file_.bytes().size(), limits, max_alignment)) {}

void GgufReader::list(const ckpt::sdk::Visitor& visitor) { list_document(parsed_, visitor); }

void list_document(const Parsed& parsed, const ckpt::sdk::Visitor& visitor) {
  visitor.begin_group("");
  std::vector<ckpt_str> scratch;
  for (const KeyValue& kv : parsed.kvs) visitor.attribute(kv.key, kv.value.view(scratch));
  if (!parsed.types.empty()) {
    scratch.clear();
    for (const auto& s : parsed.types) scratch.push_back({s.data(), s.size()});
    visitor.attribute(std::string(kTypesAttribute), ckpt::sdk::make_strings(scratch));
  }
  if (parsed.version != kVersion) visitor.attribute(std::string(kVersionAttribute), ckpt::sdk::make_int(parsed.version));
  for (size_t i = 0; i < parsed.tensors.size(); ++i) {
    const TensorEntry& t = parsed.tensors[i];
    visitor.tensor(t.name, t.dtype, t.shape, t.nbytes, i);
  }
  // parse refuses a tensor named meta beside these.
  if (!parsed.unread.empty() || parsed.integrity) {
    auto strings = [&](const std::vector<std::string>& list) {
      scratch.clear();
      for (const auto& s : list) scratch.push_back({s.data(), s.size()});
      return ckpt::sdk::make_strings(scratch);
    };
    visitor.begin_group("meta");
    if (!parsed.unread.empty()) visitor.attribute("unread", strings(parsed.unread));
    if (const auto& rec = parsed.integrity) {
      visitor.begin_group("integrity");
      visitor.attribute("algorithm", ckpt::sdk::make_string(rec->algorithm));
      std::vector<std::string> paths;
      for (const TensorEntry& t : parsed.tensors) paths.push_back(t.name);
      visitor.attribute("paths", strings(paths));
      visitor.attribute("digests", strings(rec->digests));
      visitor.attribute("manifest", ckpt::sdk::make_string(rec->manifest));
      visitor.attribute("manifest_encoding", ckpt::sdk::make_string(rec->encoding));
      visitor.end_group();
    }
    visitor.end_group();
  }
  visitor.end_group();
}

const TensorEntry& GgufReader::entry(uint64_t id) const {
  if (id >= parsed_.tensors.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " (the file holds " +
                                 std::to_string(parsed_.tensors.size()) + ")");
  return parsed_.tensors[id];
}

void GgufReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  const TensorEntry& t = entry(id);
  if (dst.size() != t.nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor " + quote(t.name) + " has " + std::to_string(t.nbytes) + " bytes, the buffer " +
                                        std::to_string(dst.size()));
  if (t.nbytes == 0) return;
  if (t.head_rows) return unpermute(t, dst.data());
  const uint64_t at = parsed_.data_start + t.offset;
  // Small tensors lie in pages the parse touched or soon will; large ones are read with pread
  // (sdk::MappedFile explains why).
  if (t.nbytes <= (64 << 10))
    std::memcpy(dst.data(), file_.data() + at, t.nbytes);
  else
    file_.read_at(at, dst);
}

void GgufReader::unpermute(const TensorEntry& t, std::byte* dst) const {
  const std::byte* src = file_.data() + parsed_.data_start + t.offset;
  const auto rows = static_cast<uint64_t>(t.shape[0]);
  const uint64_t row = t.nbytes / rows;
  for (uint64_t r = 0; r < rows; ++r) std::memcpy(dst + r * row, src + gguf_row_of_hf_row(r, t.head_rows) * row, row);
}

const void* GgufReader::map_tensor(uint64_t id) {
  const TensorEntry& t = entry(id);
  if (t.head_rows) {
    // Not the file's bytes: a copy in the document's row order, kept until the reader goes.
    auto [it, fresh] = reordered_.try_emplace(id);
    if (fresh) {
      it->second.resize(static_cast<size_t>(t.nbytes));
      unpermute(t, it->second.data());
    }
    return it->second.data();
  }
  return t.nbytes ? file_.data() + parsed_.data_start + t.offset : file_.data();
}

void GgufReader::read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                            std::span<std::byte> dst) {
  const TensorEntry& t = entry(id);
  if (t.head_rows) fail(CKPT_ERR_UNSUPPORTED, "tensor " + quote(t.name) + " is stored in another row order: read whole");
  const size_t rank = t.shape.size();
  const ckpt::sdk::DtypeBlock block = ckpt::sdk::dtype_block(t.dtype);
  bool inside = start.size() == rank && count.size() == rank;
  for (size_t d = 0; inside && d < rank; ++d) {
    const auto dim = static_cast<uint64_t>(t.shape[d]);
    inside = start[d] <= dim && count[d] <= dim - start[d];
  }
  // A block dtype's box takes whole rows (the host checks it too).
  if (inside && block.elements > 1 && rank > 0)
    inside = start[rank - 1] == 0 && count[rank - 1] == static_cast<uint64_t>(t.shape[rank - 1]);
  if (!inside) fail(CKPT_ERR_INVALID_ARGUMENT, "a box outside tensor " + quote(t.name) + " or not of whole rows");
  // Items: elements, or a block dtype's blocks (the last dimension counted in blocks).
  std::vector<uint64_t> dims(rank), first(start.begin(), start.end()), box(count.begin(), count.end());
  for (size_t d = 0; d < rank; ++d) dims[d] = static_cast<uint64_t>(t.shape[d]);
  if (rank > 0) {
    dims[rank - 1] /= block.elements;
    first[rank - 1] /= block.elements;
    box[rank - 1] /= block.elements;
  }
  // The box lies inside a tensor whose size was bounded when the file was parsed; the product
  // is checked all the same, so that a wrong bound elsewhere cannot make it wrap.
  uint64_t nbytes = block.bytes;
  for (uint64_t b : box)
    if (__builtin_mul_overflow(nbytes, b, &nbytes)) fail(CKPT_ERR_INVALID_ARGUMENT, "a box too large for tensor " + quote(t.name));
  if (dst.size() != nbytes) fail(CKPT_ERR_INVALID_ARGUMENT, "a buffer of the wrong size for a box of tensor " + quote(t.name));
  if (nbytes == 0) return;
  const std::byte* src = file_.data() + parsed_.data_start + t.offset;
  if (rank == 0) {
    std::memcpy(dst.data(), src, nbytes);
    return;
  }
  const uint64_t row = box[rank - 1] * block.bytes;
  std::vector<uint64_t> at(rank - 1, 0);
  for (std::byte* out = dst.data();; out += row) {
    uint64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) offset = offset * dims[d] + first[d] + (d + 1 < rank ? at[d] : 0);
    std::memcpy(out, src + offset * block.bytes, row);
    size_t d = rank - 1;
    while (d > 0 && ++at[d - 1] == box[d - 1]) at[--d] = 0;
    if (d == 0) return;
  }
}

}  // namespace ckpt_gguf
