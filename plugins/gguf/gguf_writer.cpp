#include "gguf_writer.hpp"

#include "gguf_integrity.hpp"
#include "gguf_llama.hpp"

#include <ckpt/sdk_io.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <limits>
#include <unistd.h>
#include <unordered_map>

namespace ckpt_gguf {

using ckpt::sdk::fail;
using ckpt::sdk::Value;

namespace {

class Bytes {
 public:
  explicit Bytes(std::vector<uint8_t>& out) : out_(out) {}
  template <class T>
  void put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    out_.insert(out_.end(), b, b + sizeof b);
  }
  void string(std::string_view s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  size_t size() const { return out_.size(); }

 private:
  std::vector<uint8_t>& out_;
};

bool fits(uint32_t type, int64_t v) {
  switch (type) {
    case kU8: return v >= 0 && v <= 255;
    case kI8: return v >= -128 && v <= 127;
    case kU16: return v >= 0 && v <= 65535;
    case kI16: return v >= -32768 && v <= 32767;
    case kU32: return v >= 0 && v <= int64_t{0xffffffff};
    case kI32: return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    case kU64: return v >= 0;
    case kI64: return true;
    default: return false;
  }
}

bool exact_f32(double d) { return std::isnan(d) || static_cast<double>(static_cast<float>(d)) == d; }

std::optional<uint64_t> decimal_u64(std::string_view s) {
  uint64_t u = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), u);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  return u;
}

void put_int(Bytes& b, uint32_t type, int64_t v) {
  switch (type) {
    case kU8: b.put(static_cast<uint8_t>(v)); break;
    case kI8: b.put(static_cast<int8_t>(v)); break;
    case kU16: b.put(static_cast<uint16_t>(v)); break;
    case kI16: b.put(static_cast<int16_t>(v)); break;
    case kU32: b.put(static_cast<uint32_t>(v)); break;
    case kI32: b.put(static_cast<int32_t>(v)); break;
    case kU64: b.put(static_cast<uint64_t>(v)); break;
    default: b.put(v); break;
  }
}

// JSON text of an array of arrays (what the reader makes of one) back into GGUF's encoding.
class JsonArrays {
 public:
  JsonArrays(std::string_view text, uint32_t scalar) : s_(text), scalar_(scalar) {}
  // Encodes the array of `depth` levels at the cursor: element type, count, elements.
  bool array(std::vector<uint8_t>& out, int depth) {
    if (!eat('[')) return false;
    std::vector<uint8_t> body;
    Bytes b(body);
    uint64_t n = 0;
    if (!eat(']')) {
      do {
        ++n;
        if (depth > 1) {
          if (!array(body, depth - 1)) return false;
        } else if (!scalar(b)) {
          return false;
        }
      } while (eat(','));
      if (!eat(']')) return false;
    }
    Bytes o(out);
    o.put<uint32_t>(depth > 1 ? static_cast<uint32_t>(kArray) : scalar_);
    o.put<uint64_t>(n);
    out.insert(out.end(), body.begin(), body.end());
    return true;
  }
  bool done() {
    skip();
    return i_ == s_.size();
  }

 private:
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string_view token() {
    skip();
    const size_t b = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ']' && s_[i_] != ' ') ++i_;
    return s_.substr(b, i_ - b);
  }
  bool scalar(Bytes& b) {
    if (scalar_ == kString) return string(b);
    const std::string_view t = token();
    if (scalar_ == kBool) {
      if (t != "true" && t != "false") return false;
      b.put<uint8_t>(t == "true" ? 1 : 0);
      return true;
    }
    if (scalar_ == kF32 || scalar_ == kF64) {
      double d = 0;
      if (t == "NaN") d = std::numeric_limits<double>::quiet_NaN();
      else if (t == "Infinity") d = std::numeric_limits<double>::infinity();
      else if (t == "-Infinity") d = -std::numeric_limits<double>::infinity();
      else if (scalar_ == kF32) {
        float f = 0;
        auto r = std::from_chars(t.data(), t.data() + t.size(), f);
        if (r.ec != std::errc() || r.ptr != t.data() + t.size()) return false;
        b.put(f);
        return true;
      } else {
        auto r = std::from_chars(t.data(), t.data() + t.size(), d);
        if (r.ec != std::errc() || r.ptr != t.data() + t.size()) return false;
      }
      if (scalar_ == kF32) b.put(static_cast<float>(d));
      else b.put(d);
      return true;
    }
    if (scalar_ == kU64) {
      auto u = decimal_u64(t);
      if (!u) return false;
      b.put(*u);
      return true;
    }
    int64_t v = 0;
    auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size() || !fits(scalar_, v)) return false;
    put_int(b, scalar_, v);
    return true;
  }
  bool string(Bytes& b) {
    if (!eat('"')) return false;
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      c = s_[i_++];
      if (c == '"' || c == '\\' || c == '/') out += c;
      else if (c == 'n') out += '\n';
      else if (c == 't') out += '\t';
      else if (c == 'r') out += '\r';
      else if (c == 'b') out += '\b';
      else if (c == 'f') out += '\f';
      else if (c == 'u' && i_ + 4 <= s_.size()) {
        unsigned v = 0;
        auto r = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, v, 16);
        if (r.ptr != s_.data() + i_ + 4 || v > 0x7f) return false;  // the reader escapes controls only
        out += static_cast<char>(v);
        i_ += 4;
      } else {
        return false;
      }
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    b.string(out);
    return true;
  }
  std::string_view s_;
  uint32_t scalar_;
  size_t i_ = 0;
};

// The value in `type`, or false when `type` cannot hold it exactly (the caller then uses the
// default type).
bool encode_as(const Value& v, const TypeDesc& type, std::vector<uint8_t>& out) {
  std::vector<uint8_t> tmp;
  Bytes b(tmp);
  if (type.depth >= 2 || (type.depth == 1 && type.scalar == kArray)) {
    if (v.type != CKPT_VALUE_STRING) return false;
    JsonArrays j(v.s, type.scalar);
    b.put<uint32_t>(kArray);
    // The outer array's own encoding follows its value type.
    std::vector<uint8_t> arr;
    if (!j.array(arr, type.depth) || !j.done()) return false;
    tmp.insert(tmp.end(), arr.begin(), arr.end());
    out.insert(out.end(), tmp.begin(), tmp.end());
    return true;
  }
  if (type.depth == 1) {
    b.put<uint32_t>(kArray);
    b.put<uint32_t>(type.scalar);
    switch (v.type) {
      case CKPT_VALUE_BOOL_ARRAY:
        if (type.scalar != kBool) return false;
        b.put<uint64_t>(v.bools.size());
        for (uint8_t x : v.bools) b.put<uint8_t>(x ? 1 : 0);
        break;
      case CKPT_VALUE_INT64_ARRAY:
        if (!is_integer_type(type.scalar)) return false;
        for (int64_t x : v.ints)
          if (!fits(type.scalar, x)) return false;
        b.put<uint64_t>(v.ints.size());
        for (int64_t x : v.ints) put_int(b, type.scalar, x);
        break;
      case CKPT_VALUE_FLOAT64_ARRAY:
        if (type.scalar != kF32 && type.scalar != kF64) return false;
        if (type.scalar == kF32)
          for (double x : v.floats)
            if (!exact_f32(x)) return false;
        b.put<uint64_t>(v.floats.size());
        for (double x : v.floats) type.scalar == kF32 ? b.put(static_cast<float>(x)) : b.put(x);
        break;
      case CKPT_VALUE_STRING_ARRAY:
        if (type.scalar == kU64) {
          b.put<uint64_t>(v.strings.size());
          for (const auto& s : v.strings) {
            auto u = decimal_u64(s);
            if (!u) return false;
            b.put(*u);
          }
          break;
        }
        if (type.scalar != kString) return false;
        b.put<uint64_t>(v.strings.size());
        for (const auto& s : v.strings) b.string(s);
        break;
      default:
        return false;
    }
    out.insert(out.end(), tmp.begin(), tmp.end());
    return true;
  }
  b.put<uint32_t>(type.scalar);
  switch (v.type) {
    case CKPT_VALUE_BOOL:
      if (type.scalar != kBool) return false;
      b.put<uint8_t>(v.b ? 1 : 0);
      break;
    case CKPT_VALUE_INT64:
      if (!is_integer_type(type.scalar) || !fits(type.scalar, v.i)) return false;
      put_int(b, type.scalar, v.i);
      break;
    case CKPT_VALUE_FLOAT64:
      if (type.scalar == kF32 && exact_f32(v.f)) b.put(static_cast<float>(v.f));
      else if (type.scalar == kF64) b.put(v.f);
      else return false;
      break;
    case CKPT_VALUE_STRING:
      if (type.scalar == kU64) {
        auto u = decimal_u64(v.s);
        if (!u) return false;
        b.put(*u);
      } else if (type.scalar == kString) {
        b.string(v.s);
      } else {
        return false;
      }
      break;
    default:
      return false;
  }
  out.insert(out.end(), tmp.begin(), tmp.end());
  return true;
}

}  // namespace

GgufWriter::GgufWriter(const std::string& path, uint64_t staging_bytes, NameMapping names, LlamaOptions llama)
    : path_(path), staging_limit_(staging_bytes), names_(names), llama_opts_(llama) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot create", path));
}

GgufWriter::~GgufWriter() {
  if (fd_ >= 0) ::close(fd_);
}

std::string GgufWriter::path_prefix() const {
  std::string p;
  for (size_t i = 1; i < stack_.size(); ++i) p += stack_[i] + ".";
  return p;
}

void GgufWriter::begin_group(std::string_view name, uint64_t, uint64_t n_children) {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group after finish");
  if (stack_.empty()) {
    if (root_done_ || !name.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "the document must start with the root group \"\"");
    root_children_ = n_children;
  }
  // GGUF has no groups: a nested group's members take its path, joined with '.', as the host
  // flattens them (it hands over nested groups only for its own records, meta/conversion).
  if (stack_.size() == 1 && name == "meta") host_records_ = true;
  stack_.emplace_back(name);
}

void GgufWriter::end_group() {
  if (stack_.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "end_group without an open group");
  stack_.pop_back();
  if (stack_.empty()) root_done_ = true;
}

void GgufWriter::attribute(std::string_view name, const ckpt_value& value) {
  if (stack_.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "an attribute outside any group");
  // A record of hashes the host made describes the document it handed over, which the writer
  // flattens and may rename: the writer records the hashes of what it writes instead.
  if (stack_.size() == 3 && stack_[1] == "meta" && stack_[2] == "integrity") return;
  const std::string where = "attribute " + quote(name);
  Value v = Value::copy_of(value, where);
  if (stack_.size() == 1 && name == kTypesAttribute) {
    // The reader's record of key types: string pairs, key then a type name. Anything else is
    // refused (never dropped: the types it would give are the file's).
    bool ok = v.type == CKPT_VALUE_STRING_ARRAY && v.strings.size() % 2 == 0;
    for (size_t i = 1; ok && i < v.strings.size(); i += 2) ok = TypeDesc::parse(v.strings[i]).has_value();
    if (!ok)
      fail(CKPT_ERR_INVALID_ARGUMENT, where + ": GGUF's record of key types must be an array of strings in pairs, a key "
                                              "and a GGUF type name (u8, f32, array[string], ...) each (docs/formats/gguf.md)");
    recorded_types_ = v.strings;
    from_gguf_ = true;
    return;
  }
  if (stack_.size() == 1 && name == kVersionAttribute) {
    if (v.type != CKPT_VALUE_INT64 || (v.i != 2 && v.i != 3))
      fail(CKPT_ERR_INVALID_ARGUMENT, where + ": the GGUF version to write must be the integer 2 or 3");
    version_ = static_cast<uint32_t>(v.i);
    from_gguf_ = true;
    return;
  }
  if (stack_.size() == 1 && name == "general.architecture") from_gguf_ = true;
  std::string key = stack_.size() == 1 ? gguf_name_of(name) : path_prefix() + std::string(name);
  if (key == kNamesKey || key == kShapesKey || key == kPaddingKey || key.compare(0, kIntegrityPrefix.size(), kIntegrityPrefix) == 0)
    fail(CKPT_ERR_UNSUPPORTED, where + ": GGUF key " + quote(key) + " is ckpt's own (docs/formats/gguf.md)");
  if (key.size() > kMaxKeyBytes)
    fail(CKPT_ERR_UNSUPPORTED, where + ": a GGUF key holds at most " + std::to_string(kMaxKeyBytes) + " bytes");
  if (!keys_.insert(key).second) {
    // A record the host adds (meta/conversion) replaces the one an earlier conversion left at
    // the root as 'meta.conversion.*', as the host replaces it in formats with groups.
    if (stack_.size() > 1)
      for (Kv& kv : kvs_)
        if (kv.key == key) {
          kv.value = std::move(v);
          return;
        }
    fail(CKPT_ERR_INVALID_ARGUMENT, where + ": key " + quote(key) + " repeats");
  }
  if (key == "general.alignment") {
    if (infos_.size() || alignment_fixed_)
      fail(CKPT_ERR_INVALID_ARGUMENT, where + ": general.alignment after the first tensor");
    // Always written as a u32 (ggml reads it so); ckpt writes at most 64 KiB of padding.
    if (v.type != CKPT_VALUE_INT64 || v.i <= 0 || (v.i & (v.i - 1)) != 0 || static_cast<uint64_t>(v.i) > kMaxAlignment)
      fail(CKPT_ERR_UNSUPPORTED, where + ": GGUF key general.alignment must be an integer power of two of at most " +
                                     std::to_string(kMaxAlignment) + " (written as a u32), not " +
                                     (v.type == CKPT_VALUE_INT64 ? std::to_string(v.i) : std::string("that value")));
    alignment_ = static_cast<uint64_t>(v.i);
  }
  kvs_.push_back({std::move(key), std::move(v)});
}

void GgufWriter::write_at(uint64_t pos, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd_, c, n, static_cast<off_t>(pos));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot write", path_));
    }
    c += w;
    n -= static_cast<size_t>(w);
    pos += static_cast<uint64_t>(w);
  }
}

void GgufWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  if (stack_.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "a tensor outside any group");
  alignment_fixed_ = true;
  Info t;
  t.name = path_prefix() + std::string(info.name);
  const std::string where = "tensor " + quote(t.name);
  auto ggml = ggml_of_dtype(info.dtype);
  if (!ggml)
    fail(CKPT_ERR_INVALID_ARGUMENT, where + ": GGUF holds no " +
                                        (ckpt::sdk::dtype_name(info.dtype) ? ckpt::sdk::dtype_name(info.dtype) : "unknown") +
                                        " tensors");
  t.dtype = info.dtype;
  t.ggml = *ggml;
  t.shape.assign(info.shape.begin(), info.shape.end());
  t.nbytes = ckpt::sdk::tensor_nbytes(t.shape, t.dtype, where);
  if (t.nbytes != data.size() || info.nbytes != data.size())
    fail(CKPT_ERR_INVALID_ARGUMENT, where + ": " + std::to_string(data.size()) + " bytes for " + std::to_string(t.nbytes));
  if (!tensor_names_.insert(t.name).second) fail(CKPT_ERR_INVALID_ARGUMENT, where + ": the name repeats");
  t.digest = digest_hex(data);
  t.offset = align_up(data_size_, alignment_);
  const uint64_t pad = t.offset - data_size_;
  data_size_ = t.offset + t.nbytes;
  infos_.push_back(std::move(t));
  if (!spilled_ && stage_.size() + pad + data.size() > staging_limit_) spill();
  if (!spilled_) {
    stage_.resize(stage_.size() + pad);  // zeros
    stage_.insert(stage_.end(), data.begin(), data.end());
  } else if (!data.empty()) {
    // The padding before it is a hole of zeros; the data goes straight to the file.
    write_at(data_start_ + infos_.back().offset, data.data(), data.size());
  }
}

// A bound on the header: what it holds so far, and 256 bytes for each tensor still to come,
// with 64 KiB for the key-values of nested groups, which arrive last, and the record of hashes
// (24 bytes a tensor, and its keys).
uint64_t GgufWriter::header_bound() const {
  std::vector<uint8_t> h = const_cast<GgufWriter*>(this)->header(0, false);
  const uint64_t seen = infos_.size();
  const uint64_t more = root_children_ > seen ? root_children_ - seen : 0;
  return h.size() + 64 + 256 * more + (64 << 10) + 24 * (seen + more) + 256;
}

void GgufWriter::spill() {
  const uint64_t unit = std::max<uint64_t>(4096, alignment_);
  data_start_ = align_up(header_bound(), unit);
  spilled_ = true;
  if (!stage_.empty()) write_at(data_start_, stage_.data(), stage_.size());
  std::vector<std::byte>().swap(stage_);
}

void GgufWriter::open_gap(uint64_t from, uint64_t by) {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot stat", path_));
  const auto end = static_cast<uint64_t>(st.st_size);
  if (by == 0 || from >= end) return;
  if (::fallocate(fd_, FALLOC_FL_INSERT_RANGE, static_cast<off_t>(from), static_cast<off_t>(by)) == 0) return;
  // Not every file system inserts blocks: move the bytes, last chunk first.
  std::vector<std::byte> chunk(static_cast<size_t>(std::min<uint64_t>(uint64_t{8} << 20, end - from)));
  for (uint64_t pos = end; pos > from;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), pos - from));
    pos -= n;
    ckpt::sdk::detail::pread_all(fd_, pos, {chunk.data(), n}, path_);
    write_at(pos + by, chunk.data(), n);
  }
  // The old place of the first bytes: zeros, as a hole would be.
  std::vector<std::byte> zeros(static_cast<size_t>(std::min<uint64_t>(by, uint64_t{8} << 20)));
  for (uint64_t done = 0; done < by;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), by - done));
    write_at(from + done, zeros.data(), n);
    done += n;
  }
}

// Moves the data section's `n` bytes from `from` to `to`, in either direction, through a
// bounded buffer; what the data leaves behind is not cleared (the caller trims or overwrites it).
void GgufWriter::move_data(uint64_t from, uint64_t to, uint64_t n) {
  if (from == to || n == 0) return;
  std::vector<std::byte> chunk(static_cast<size_t>(std::min<uint64_t>(uint64_t{8} << 20, n)));
  // Leftward the front goes first, rightward the back: each chunk is read before it is overwritten.
  for (uint64_t done = 0; done < n;) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(chunk.size(), n - done));
    const uint64_t at = to < from ? done : n - done - k;
    ckpt::sdk::detail::pread_all(fd_, from + at, {chunk.data(), k}, path_);
    write_at(to + at, chunk.data(), k);
    done += k;
  }
}

void GgufWriter::resolve_names() {
  gguf_names_.clear();
  bool llama = names_ == NameMapping::llama;
  // Automatically only for a document that did not come from GGUF (names read from a GGUF file
  // are already the file's own: X -> ckpt -> X keeps them).
  if (names_ == NameMapping::automatic && !from_gguf_) {
    bool embed = false, q = false;
    for (const Info& t : infos_) {
      embed = embed || t.name == "model.embed_tokens.weight";
      q = q || t.name == "model.layers.0.self_attn.q_proj.weight";
    }
    llama = looks_like_llama(embed, q);
  }
  llama_applied_ = false;
  for (const Info& t : infos_) {
    std::optional<std::string> mapped = llama ? llama_name(t.name) : std::nullopt;
    llama_applied_ = llama_applied_ || mapped.has_value();
    gguf_names_.push_back(mapped ? *mapped : gguf_name_of(t.name));
  }
}

// Rewrites a tensor's rows in llama.cpp's rotary order, one head at a time (the memory of one
// head's rows), where its bytes are: the staging buffer or the file.
void GgufWriter::permute_rows(const Info& t, uint64_t heads) {
  if (t.shape.empty() || t.nbytes == 0) return;
  const auto rows = static_cast<uint64_t>(t.shape[0]);
  if (rows % (2 * heads) != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor " + quote(t.name) + ": " + std::to_string(rows) + " rows are no whole heads of " +
                                        std::to_string(heads) + " (an even number of rows each), so llama.cpp's rotary "
                                        "row order cannot be made (check -w llama.head_count / llama.head_count_kv)");
  const uint64_t head_rows = rows / heads, row = t.nbytes / rows, n = head_rows * row;
  std::vector<std::byte> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (uint64_t h = 0; h < heads; ++h) {
    const uint64_t at = t.offset + h * n;
    if (!spilled_) std::memcpy(in.data(), stage_.data() + at, n);
    else ckpt::sdk::detail::pread_all(fd_, data_start_ + at, {in.data(), in.size()}, path_);
    for (uint64_t g = 0; g < head_rows; ++g) std::memcpy(out.data() + g * row, in.data() + hf_row_of_gguf_row(g, head_rows) * row, row);
    if (!spilled_) std::memcpy(stage_.data() + at, out.data(), n);
    else write_at(data_start_ + at, out.data(), n);
  }
}

// A file llama.cpp loads as a llama model: attn_q and attn_k in its rotary row order (the
// document holds Hugging Face's, as the reader gives it back), and, when the Llama name map made
// the names, the hyper-parameters llama.cpp reads, each from the shapes or a writer option (a
// key the document has is kept). Head counts, context length and epsilon are never guessed.
void GgufWriter::llama_layout() {
  auto find = [&](std::string_view key) -> Kv* {
    for (Kv& kv : kvs_)
      if (kv.key == key) return &kv;
    return nullptr;
  };
  const Kv* arch = find("general.architecture");
  if (!llama_applied_ && !(arch && arch->value.type == CKPT_VALUE_STRING && arch->value.s == "llama")) return;
  auto kv_count = [&](std::string_view key) -> std::optional<uint64_t> {
    const Kv* kv = find(key);
    if (kv && kv->value.type == CKPT_VALUE_INT64 && kv->value.i > 0) return static_cast<uint64_t>(kv->value.i);
    return std::nullopt;
  };
  std::optional<uint64_t> heads = llama_opts_.head_count ? llama_opts_.head_count : kv_count("llama.attention.head_count");
  std::optional<uint64_t> heads_kv =
      llama_opts_.head_count_kv ? llama_opts_.head_count_kv : kv_count("llama.attention.head_count_kv");
  if (!heads_kv) heads_kv = heads;  // llama.cpp's reading of a file without the key
  if (llama_applied_) {
    std::vector<std::string> missing;
    auto add = [&](const std::string& key, std::optional<Value> v, const char* type, const char* option) {
      if (keys_.count(key)) return;
      if (!v) {
        if (option) missing.push_back(option);
        return;
      }
      keys_.insert(key);
      kvs_.push_back({key, std::move(*v)});
      recorded_types_.push_back(key);
      recorded_types_.push_back(type);
    };
    auto count = [](std::optional<uint64_t> n) { return n ? std::optional<Value>(Value::integer(static_cast<int64_t>(*n))) : std::nullopt; };
    std::optional<uint64_t> embed, vocab, ff, layers;
    for (const Info& t : infos_) {
      if (t.name == "model.embed_tokens.weight" && t.shape.size() == 2) {
        vocab = static_cast<uint64_t>(t.shape[0]);
        embed = static_cast<uint64_t>(t.shape[1]);
      }
      if (t.name == "model.layers.0.mlp.up_proj.weight" && t.shape.size() == 2) ff = static_cast<uint64_t>(t.shape[0]);
      constexpr std::string_view prefix = "model.layers.";
      if (t.name.compare(0, prefix.size(), prefix) == 0) {
        uint64_t n = 0;
        auto r = std::from_chars(t.name.data() + prefix.size(), t.name.data() + t.name.size(), n);
        if (r.ec == std::errc() && llama_name(t.name)) layers = std::max<uint64_t>(layers.value_or(0), n + 1);
      }
    }
    Value name;
    name.type = CKPT_VALUE_STRING;
    name.s = "llama";
    add("general.architecture", name, "string", nullptr);
    add("llama.block_count", count(layers), "u32", nullptr);
    add("llama.context_length", count(llama_opts_.context_length), "u32", "llama.context_length");
    add("llama.embedding_length", count(embed), "u32", nullptr);
    add("llama.feed_forward_length", count(ff), "u32", nullptr);
    add("llama.attention.head_count", count(heads), "u32", "llama.head_count");
    add("llama.attention.head_count_kv", count(heads_kv), "u32", nullptr);
    add("llama.rope.dimension_count", count(embed && heads && *embed % *heads == 0 ? std::optional(*embed / *heads) : std::nullopt),
        "u32", nullptr);
    // llama.cpp reads the epsilon as an f32: the option's value rounded to one.
    add("llama.attention.layer_norm_rms_epsilon",
        llama_opts_.rms_epsilon ? std::optional(Value::floating(static_cast<float>(*llama_opts_.rms_epsilon))) : std::nullopt,
        "f32", "llama.rms_epsilon");
    add("llama.vocab_size", count(vocab), "u32", nullptr);
    if (!missing.empty()) {
      std::string list;
      for (const auto& m : missing) list += (list.empty() ? "-w " : ", -w ") + m + "=...";
      fail(CKPT_ERR_INVALID_ARGUMENT, "the Llama name map applies (a Hugging Face Llama state dict), and llama.cpp needs what "
                                      "the weights cannot tell: give " + list +
                                      " (from the model's config.json: num_attention_heads, max_position_embeddings, "
                                      "rms_norm_eps), or -w names=keep for no Llama layout (docs/formats/gguf.md)");
    }
  }
  for (size_t i = 0; i < infos_.size(); ++i) {
    const char kind = rotary_kind(gguf_names_[i]);
    if (!kind) continue;
    const std::optional<uint64_t> h = kind == 'q' ? heads : heads_kv;
    if (!h)
      fail(CKPT_ERR_INVALID_ARGUMENT, "tensor " + quote(infos_[i].name) + " goes to a llama file in llama.cpp's rotary row order, "
                                      "made per head, and the document has no llama.attention.head_count: give -w llama.head_count=N");
    permute_rows(infos_[i], *h);
  }
}

// Every file the writer makes records the hashes of its tensors and a manifest of the document
// the reader lists for it (docs/schema.md), when the host hands it records (a group meta:
// meta/integrity, meta/conversion; a document of plain key-values and tensors, as GGUF -> GGUF
// and the SDK's conformance kit write, stays byte for byte what it was): the header without the record is parsed by the
// reader's own parse, so the manifest covers exactly what a reader sees (names as read back,
// key values as GGUF's types hold them, gguf:types). A document whose tensor reads back as
// 'meta', the group the record goes to, gets none.
void GgufWriter::record_hashes() {
  integrity_.reset();
  if (!host_records_) return;
  const std::vector<uint8_t> h = header(0, false);
  const uint64_t size = align_up(h.size(), alignment_) + align_up(data_size_, alignment_);
  const Parsed parsed = parse(std::as_bytes(std::span(h)), size, ckpt::sdk::ReadLimits{}, kMaxAlignment);
  if (parsed.tensors.size() != infos_.size() || !parsed.unread.empty())
    fail(CKPT_ERR_INTERNAL, "the header the writer made reads back with " + std::to_string(parsed.tensors.size()) +
                                " tensors for " + std::to_string(infos_.size()));
  for (const TensorEntry& t : parsed.tensors)
    if (t.name == "meta") return;
  IntegrityRecord rec;
  rec.algorithm = kHashAlgorithm;
  rec.encoding = kManifestEncoding;
  for (const Info& t : infos_) rec.digests.push_back(t.digest);
  rec.manifest = manifest_digest(parsed, rec.digests);
  integrity_ = std::move(rec);
}

// The header: key-values (with ckpt's own keys where needed, and `padding` bytes of filler
// when `with_padding`), tensor infos, without the padding after it.
std::vector<uint8_t> GgufWriter::header(uint64_t padding, bool with_padding) {
  resolve_names();
  std::vector<std::string> long_names, shapes;
  std::unordered_set<std::string> used(gguf_names_.begin(), gguf_names_.end());
  if (used.size() != gguf_names_.size()) {
    std::unordered_map<std::string, size_t> seen;
    for (size_t i = 0; i < gguf_names_.size(); ++i)
      if (!seen.emplace(gguf_names_[i], i).second)
        fail(CKPT_ERR_UNSUPPORTED, "tensors " + quote(infos_[seen[gguf_names_[i]]].name) + " and " + quote(infos_[i].name) +
                                       " would both be GGUF tensor " + quote(gguf_names_[i]) + " (option names=keep keeps names)");
  }
  for (size_t i = 0; i < gguf_names_.size(); ++i) {
    if (gguf_names_[i].size() <= kMaxWrittenNameBytes) continue;
    const std::string full = gguf_names_[i];
    std::string s;
    for (uint64_t salt = 0; s.empty() || used.count(s); ++salt) s = shortened_name(full, salt);
    used.insert(s);
    gguf_names_[i] = s;
    long_names.push_back(s);
    long_names.push_back(infos_[i].name);  // the document's name (kNamesKey gives names as documents have them)
  }
  std::vector<uint8_t> out;
  Bytes b(out);
  b.put<uint32_t>(0x46554747u);  // "GGUF"
  b.put<uint32_t>(version_);
  b.put<uint64_t>(infos_.size());
  b.put<uint64_t>(0);  // the key-value count, below
  uint64_t n_kv = 0;
  std::unordered_map<std::string, std::string> recorded;
  for (size_t i = 0; i + 1 < recorded_types_.size(); i += 2) recorded[recorded_types_[i]] = recorded_types_[i + 1];
  for (const Kv& kv : kvs_) {
    b.string(kv.key);
    bool done = false;
    // general.alignment is a u32 whatever was recorded (ggml asserts on any other type).
    if (auto it = recorded.find(kv.key); it != recorded.end() && kv.key != kAlignmentKey)
      if (auto t = TypeDesc::parse(it->second)) done = encode_as(kv.value, *t, out);
    if (!done && !encode_as(kv.value, default_type(kv.key, kv.value.type), out))
      encode_as(kv.value, default_type("", kv.value.type), out);  // general.quantization_version beyond u32: i64
    ++n_kv;
  }
  // Shapes GGUF's dimensions cannot hold as they are, kept in ckpt.tensor_shapes:
  //  - a 0 in any dimension but the last (ggml's ne[1..3]: ggml's reader divides by them):
  //    written as dims (0), no elements either way;
  //  - dimensions past GGUF's four: the outer ones folded into the fourth.
  std::vector<std::vector<int64_t>> dims(infos_.size());
  for (size_t i = 0; i < infos_.size(); ++i) {
    const auto& s = infos_[i].shape;
    const bool zero_outer = s.size() > 1 && std::find(s.begin(), s.end() - 1, 0) != s.end() - 1;
    if (!zero_outer && s.size() <= kMaxDims) {
      dims[i].assign(s.rbegin(), s.rend());
      continue;
    }
    if (zero_outer) {
      dims[i] = {0};
    } else {
      int64_t outer = 1;
      // The host bounds a tensor's non-zero dimensions, and none of these is 0; checked anyway,
      // since a wrapped product would describe another shape.
      for (size_t k = 0; k + 3 < s.size(); ++k)
        if (__builtin_mul_overflow(outer, s[k], &outer))
          fail(CKPT_ERR_LIMIT, "tensor '" + gguf_names_[i] + "': its outer dimensions overflow GGUF's fourth dimension");
      dims[i] = {s[s.size() - 1], s[s.size() - 2], s[s.size() - 3], outer};
    }
    std::string text;
    for (size_t k = 0; k < s.size(); ++k) text += (k ? "," : "") + std::to_string(s[k]);
    shapes.push_back(gguf_names_[i]);
    shapes.push_back(text);
  }
  for (const auto& [key, list] : {std::pair<std::string_view, std::vector<std::string>*>{kNamesKey, &long_names},
                                  std::pair<std::string_view, std::vector<std::string>*>{kShapesKey, &shapes}}) {
    if (list->empty()) continue;
    b.string(key);
    b.put<uint32_t>(kArray);
    b.put<uint32_t>(kString);
    b.put<uint64_t>(list->size());
    for (const auto& s : *list) b.string(s);
    ++n_kv;
  }
  if (integrity_) {
    auto str = [&](std::string_view key, const std::string& v) {
      b.string(key);
      b.put<uint32_t>(kString);
      b.string(v);
      ++n_kv;
    };
    str(kIntegrityAlgorithmKey, integrity_->algorithm);
    b.string(kIntegrityDigestsKey);
    b.put<uint32_t>(kArray);
    b.put<uint32_t>(kString);
    b.put<uint64_t>(integrity_->digests.size());
    for (const auto& d : integrity_->digests) b.string(d);
    ++n_kv;
    str(kIntegrityManifestKey, integrity_->manifest);
    str(kIntegrityEncodingKey, integrity_->encoding);
  }
  if (with_padding) {
    b.string(kPaddingKey);
    b.put<uint32_t>(kString);
    b.put<uint64_t>(padding);
    out.insert(out.end(), padding, ' ');
    ++n_kv;
  }
  std::memcpy(out.data() + 16, &n_kv, 8);
  for (size_t i = 0; i < infos_.size(); ++i) {
    b.string(gguf_names_[i]);
    b.put<uint32_t>(static_cast<uint32_t>(dims[i].size()));
    for (int64_t d : dims[i]) b.put<uint64_t>(static_cast<uint64_t>(d));
    b.put<uint32_t>(infos_[i].ggml);
    b.put<uint64_t>(infos_[i].offset);
  }
  return out;
}

void GgufWriter::finish() {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish called twice");
  if (!root_done_ || !stack_.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "finish before the root group was closed");
  finished_ = true;
  resolve_names();
  llama_layout();
  record_hashes();
  // Only the header's bytes are written: the padding after it (and after the last tensor) is
  // left to the file's holes (the file was truncated at open, ftruncate sizes it).
  if (!spilled_) {
    std::vector<uint8_t> h = header(0, false);
    const uint64_t start = align_up(h.size(), alignment_);
    write_at(0, h.data(), h.size());
    if (!stage_.empty()) write_at(start, stage_.data(), stage_.size());
  } else if (from_gguf_) {
    // A document read from GGUF is written back as ggml lays it out, whatever its size (so GGUF
    // -> GGUF is byte for byte): the header's size is known only now, and its end fixes the data
    // section's start to the byte, which no block-granular insert or collapse reaches, so the
    // streamed data is moved once into place.
    std::vector<uint8_t> h = header(0, false);
    const uint64_t start = align_up(h.size(), alignment_);
    if (start != data_start_) {
      move_data(data_start_, start, data_size_);
      if (start < data_start_) {
        // The old tail: cut, then the padding after the last tensor comes back as zeros below.
        if (::ftruncate(fd_, static_cast<off_t>(start + data_size_)) != 0)
          fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot size", path_));
      } else {
        const std::vector<std::byte> zeros(static_cast<size_t>(start - data_start_));
        write_at(data_start_, zeros.data(), zeros.size());
      }
      data_start_ = start;
    }
    write_at(0, h.data(), h.size());
  } else {
    std::vector<uint8_t> h = header(0, false);
    constexpr uint64_t kPaddingKv = 8 + kPaddingKey.size() + 4 + 8;  // a filler's least
    if (align_up(h.size(), alignment_) != data_start_) {
      if (h.size() + kPaddingKv > data_start_) {
        const uint64_t unit = std::max<uint64_t>(4096, alignment_);
        const uint64_t grow = align_up(h.size() + kPaddingKv - data_start_, unit);
        open_gap(data_start_, grow);
        data_start_ += grow;
      }
      if (align_up(h.size(), alignment_) != data_start_) h = header(data_start_ - h.size() - kPaddingKv, true);
    }
    // Up to data_start_: zeros the spill never wrote (or open_gap left).
    write_at(0, h.data(), h.size());
  }
  // The file ends where the last tensor does: ggml pads it to the alignment too.
  const uint64_t start = spilled_ ? data_start_ : align_up(header(0, false).size(), alignment_);
  const uint64_t end = start + align_up(data_size_, alignment_);
  if (::ftruncate(fd_, static_cast<off_t>(end)) != 0) fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot size", path_));
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot close", path_));
  }
  fd_ = -1;
}

}  // namespace ckpt_gguf
