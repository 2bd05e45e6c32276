#include "npy_header.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

namespace ckpt_numpy {

using ckpt::sdk::fail;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct DtypeCode {
  const char* code;
  uint32_t dtype;
};
// The type codes of descr (after the byte order) that ckpt holds.
constexpr DtypeCode kCodes[] = {
    {"b1", CKPT_DTYPE_BOOL}, {"?", CKPT_DTYPE_BOOL},  {"i1", CKPT_DTYPE_I8},   {"u1", CKPT_DTYPE_U8},
    {"i2", CKPT_DTYPE_I16},  {"u2", CKPT_DTYPE_U16},  {"i4", CKPT_DTYPE_I32},  {"u4", CKPT_DTYPE_U32},
    {"i8", CKPT_DTYPE_I64},  {"u8", CKPT_DTYPE_U64},  {"f2", CKPT_DTYPE_F16},  {"f4", CKPT_DTYPE_F32},
    {"f8", CKPT_DTYPE_F64},  {"c8", CKPT_DTYPE_C64},  {"c16", CKPT_DTYPE_C128},
};

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return s.size() > 80 ? out + "..." : out;
}

// NumPy's names of the dtypes ckpt holds, as np.load reads a descr that is no type string
// (numpy.lib.format.descr_to_dtype gives it to numpy.dtype): the sized names, the IEEE ones and
// the one-character codes whose width no platform changes, in native (little-endian) order.
// 'int', 'long', 'l' and 'L' are left out: their width is the reading platform's.
struct DtypeName {
  std::string_view name;
  uint32_t dtype;
};
constexpr DtypeName kNames[] = {
    {"bool", CKPT_DTYPE_BOOL},      {"bool_", CKPT_DTYPE_BOOL},     {"int8", CKPT_DTYPE_I8},     {"byte", CKPT_DTYPE_I8},
    {"b", CKPT_DTYPE_I8},           {"uint8", CKPT_DTYPE_U8},       {"ubyte", CKPT_DTYPE_U8},    {"B", CKPT_DTYPE_U8},
    {"int16", CKPT_DTYPE_I16},      {"short", CKPT_DTYPE_I16},      {"h", CKPT_DTYPE_I16},       {"uint16", CKPT_DTYPE_U16},
    {"ushort", CKPT_DTYPE_U16},     {"H", CKPT_DTYPE_U16},          {"int32", CKPT_DTYPE_I32},   {"intc", CKPT_DTYPE_I32},
    {"i", CKPT_DTYPE_I32},          {"uint32", CKPT_DTYPE_U32},     {"uintc", CKPT_DTYPE_U32},   {"I", CKPT_DTYPE_U32},
    {"int64", CKPT_DTYPE_I64},      {"longlong", CKPT_DTYPE_I64},   {"q", CKPT_DTYPE_I64},       {"uint64", CKPT_DTYPE_U64},
    {"ulonglong", CKPT_DTYPE_U64},  {"Q", CKPT_DTYPE_U64},          {"float16", CKPT_DTYPE_F16}, {"half", CKPT_DTYPE_F16},
    {"e", CKPT_DTYPE_F16},          {"float32", CKPT_DTYPE_F32},    {"single", CKPT_DTYPE_F32},  {"f", CKPT_DTYPE_F32},
    {"float64", CKPT_DTYPE_F64},    {"double", CKPT_DTYPE_F64},     {"float", CKPT_DTYPE_F64},   {"d", CKPT_DTYPE_F64},
    {"complex64", CKPT_DTYPE_C64},  {"csingle", CKPT_DTYPE_C64},    {"F", CKPT_DTYPE_C64},       {"complex128", CKPT_DTYPE_C128},
    {"cdouble", CKPT_DTYPE_C128},   {"complex", CKPT_DTYPE_C128},   {"D", CKPT_DTYPE_C128},
};

// A dtype name ('float32', 'complex'), not a type string: a type string is a byte order, one
// kind character and its width or unit ('<f4', '|O', '<M8[ns]'), so never two letters first.
bool is_name(std::string_view code) {
  return code.size() >= 2 && std::isalpha(static_cast<unsigned char>(code[0])) && std::isalpha(static_cast<unsigned char>(code[1]));
}

// Why a descr ckpt does not hold is refused: the kinds NumPy has beyond ckpt's.
[[noreturn]] void refuse_descr(std::string_view descr, const std::string& where) {
  std::string_view code = descr;
  if (!code.empty() && std::strchr("<>|=", code.front())) code.remove_prefix(1);
  std::string why;
  const char kind = code.empty() ? '\0' : code.front();
  if (descr == "int" || descr == "long" || descr == "l" || descr == "L" || descr == "uint" || descr == "ulong")
    why = "a C type name, which np.load reads as numpy.dtype('" + printable(descr) + "'), whose width is the reading "
          "platform's; ckpt reads only names of one width (int64, int32, ...)";
  else if (is_name(descr))
    why = "not a type string ('<f4') but a name, which np.load reads as numpy.dtype('" + printable(descr) +
          "'); ckpt reads the names of the dtypes it holds (float32, int64, bool, complex64, ...), and this is none of them";
  else if (kind == 'O')
    why = "an object array holds Python objects, which only pickle can rebuild, and ckpt never runs pickle";
  else if (kind == 'U' || kind == 'S' || kind == 'a')
    why = "a string array; ckpt tensors hold numbers";
  else if (kind == 'V')
    why = "raw void records; ckpt tensors hold numbers";
  else if (kind == 'M' || kind == 'm')
    why = "datetime and timedelta arrays have no ckpt dtype";
  else if (kind == 'f' || kind == 'c' || kind == 'g' || kind == 'G')
    why = "a float or complex width ckpt has no dtype for (ckpt holds f2 f4 f8 c8 c16)";
  else
    why = "not a dtype ckpt holds (bool, i1-i8, u1-u8, f2, f4, f8, c8, c16)";
  fail(CKPT_ERR_UNSUPPORTED, where + ": dtype '" + printable(descr) + "' is refused: " + why);
}

class Literal {
 public:
  Literal(std::string_view text, uint64_t base, int major, const std::string& where)
      : s_(text), base_(base), major_(major), where_(where) {}

  void parse(NpyHeader& h) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    skip();
    expect('{', "the header to open a dict with '{'");
    for (;;) {
      skip();
      if (peek() == '}') break;
      const size_t key_at = p_;
      const std::string_view key = string_token("a key in quotes");
      skip();
      expect(':', "':' after the key");
      skip();
      auto once = [&](bool& seen) {
        if (seen) refuse(key_at, "the key '" + std::string(key) + "' twice (one reading: a dict keeps only the last)");
        seen = true;
      };
      if (key == "descr") {
        once(seen_descr);
        descr(h);
      } else if (key == "fortran_order") {
        once(seen_order);
        h.fortran = boolean();
      } else if (key == "shape") {
        once(seen_shape);
        shape(h);
      } else {
        refuse(key_at, "an unknown key '" + printable(key) + "' (a .npy header holds exactly 'descr', 'fortran_order' and 'shape')");
      }
      skip();
      if (peek() == ',') {
        ++p_;
        continue;
      }
      if (peek() == '}') break;
      bad(p_, "',' or '}' after a value");
    }
    ++p_;
    skip();
    if (p_ != s_.size()) bad(p_, "nothing after the dict but spaces and the newline");
    if (!seen_descr || !seen_order || !seen_shape)
      fail(CKPT_ERR_FORMAT, where_ + ": the header lacks the key '" +
                                std::string(!seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape") +
                                "' (it holds exactly 'descr', 'fortran_order' and 'shape')");
  }

 private:
  char peek() const { return p_ < s_.size() ? s_[p_] : '\0'; }
  void skip() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\t' || s_[p_] == '\r')) ++p_;
  }
  [[noreturn]] void bad(size_t at, const std::string& expected) const {
    fail(CKPT_ERR_FORMAT, where_ + ": at byte " + std::to_string(base_ + at) + " of the header: expected " + expected +
                              " (the header is the Python dict literal numpy writes; near '" +
                              printable(s_.substr(std::min(at, s_.size()), 24)) + "')");
  }
  [[noreturn]] void refuse(size_t at, const std::string& what) const {
    fail(CKPT_ERR_FORMAT, where_ + ": at byte " + std::to_string(base_ + at) + " of the header: " + what);
  }
  void expect(char c, const char* what) {
    if (peek() != c) bad(p_, what);
    ++p_;
  }
  std::string_view string_token(const char* what) {
    const char q = peek();
    if (q != '\'' && q != '"') bad(p_, what);
    const size_t start = ++p_;
    while (p_ < s_.size() && s_[p_] != q) {
      const auto c = static_cast<unsigned char>(s_[p_]);
      if (c == '\\' || c < 0x20 || c >= 0x7f) bad(p_, "a plain ASCII string (no escapes)");
      ++p_;
    }
    if (p_ >= s_.size()) bad(start - 1, "a closed string");
    return s_.substr(start, p_++ - start);
  }
  bool word(std::string_view w) {
    if (s_.substr(p_, w.size()) != w) return false;
    const size_t end = p_ + w.size();
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) return false;
    p_ = end;
    return true;
  }
  bool boolean() {
    if (word("True")) return true;
    if (word("False")) return false;
    bad(p_, "True or False for 'fortran_order'");
  }
  void descr(NpyHeader& h) {
    if (peek() == '[')
      fail(CKPT_ERR_UNSUPPORTED, where_ + ": a structured dtype (a list of fields in 'descr') is refused: ckpt tensors hold "
                                          "one number type each, not records");
    const size_t at = p_;
    const std::string_view d = string_token("a dtype string for 'descr'");
    h.descr = std::string(d);
    std::string_view code = d;
    char order = '|';
    if (!code.empty() && std::strchr("<>|=", code.front())) {
      order = code.front();
      code.remove_prefix(1);
    }
    for (const DtypeCode& k : kCodes) {
      if (code != k.code) continue;
      h.dtype = k.dtype;
      h.swap = order == '>' && ckpt::sdk::dtype_number_size(k.dtype) > 1;
      return;
    }
    // A name ('float32'), read as np.load reads it: numpy.dtype(name), native byte order.
    for (const DtypeName& n : kNames) {
      if (d != n.name) continue;
      h.dtype = n.dtype;
      h.swap = false;
      return;
    }
    (void)at;
    refuse_descr(d, where_);
  }
  void shape(NpyHeader& h) {
    if (peek() != '(') bad(p_, "a tuple of integers for 'shape'");
    ++p_;
    size_t count = 0;
    bool trailing_comma = false;
    for (;;) {
      skip();
      if (peek() == ')') break;
      const size_t at = p_;
      if (peek() == '-') bad(at, "a non-negative dimension in 'shape'");
      if (!std::isdigit(static_cast<unsigned char>(peek()))) bad(at, "an integer in 'shape'");
      if (peek() == '0' && p_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_ + 1])))
        bad(at, "an integer without leading zeros");
      uint64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const uint64_t d = static_cast<uint64_t>(peek() - '0');
        if (v > (static_cast<uint64_t>(INT64_MAX) - d) / 10)
          fail(CKPT_ERR_LIMIT, where_ + ": at byte " + std::to_string(base_ + at) + " of the header: a dimension past 2^63");
        v = v * 10 + d;
        ++p_;
      }
      if (major_ < 3 && (peek() == 'L' || peek() == 'l')) ++p_;  // Python 2's long, as numpy's filter allows
      h.shape.push_back(static_cast<int64_t>(v));
      ++count;
      if (h.shape.size() > kMaxDims)
        fail(CKPT_ERR_LIMIT, where_ + ": a shape of more than " + std::to_string(kMaxDims) +
                                 " dimensions; NumPy's arrays have at most 64 (32 before NumPy 2.0), and so do ckpt's tensors");
      skip();
      trailing_comma = false;
      if (peek() == ',') {
        ++p_;
        trailing_comma = true;
        continue;
      }
      if (peek() != ')') bad(p_, "',' or ')' in 'shape'");
      break;
    }
    ++p_;
    // (3) is the integer 3 in Python, not a tuple: numpy refuses it too.
    if (count == 1 && !trailing_comma) bad(p_ - 1, "a tuple for 'shape' ('(3,)', not '(3)')");
  }

  std::string_view s_;
  uint64_t base_;
  int major_;
  const std::string& where_;
  size_t p_ = 0;
};

}  // namespace

uint64_t npy_header_size(std::span<const std::byte> head, const std::string& where) {
  if (head.size() < kMagicLen || std::memcmp(head.data(), kMagic, kMagicLen) != 0)
    fail(CKPT_ERR_FORMAT, where + ": not a .npy array (no \\x93NUMPY magic at its start)");
  if (head.size() < 8) fail(CKPT_ERR_FORMAT, where + ": the .npy header ends after its magic");
  const unsigned major = static_cast<uint8_t>(head[6]), minor = static_cast<uint8_t>(head[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(major > 3 ? CKPT_ERR_UNSUPPORTED : CKPT_ERR_FORMAT,
         where + ": .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (ckpt reads 1.0, 2.0 and 3.0)");
  const uint64_t prefix = major == 1 ? kPrefix1 : kPrefix2;
  if (head.size() < prefix) fail(CKPT_ERR_FORMAT, where + ": the .npy header ends inside its length field");
  uint64_t len = 0;
  for (uint64_t k = prefix; k-- > 8;) len = (len << 8) | static_cast<uint8_t>(head[k]);
  if (len > kMaxHeaderText)
    fail(CKPT_ERR_LIMIT, where + ": a .npy header of " + std::to_string(len) + " bytes; numpy.load refuses more than " +
                             std::to_string(kMaxHeaderText) + " without allow_pickle, and so does ckpt");
  return prefix + len;
}

NpyHeader parse_npy_header(std::span<const std::byte> bytes, const std::string& where) {
  NpyHeader h;
  h.data_offset = npy_header_size(bytes.first(std::min<size_t>(bytes.size(), kPrefix2)), where);
  if (bytes.size() < h.data_offset)
    fail(CKPT_ERR_FORMAT, where + ": the .npy header runs past the end (" + std::to_string(h.data_offset) + " bytes needed, " +
                              std::to_string(bytes.size()) + " there)");
  h.major = static_cast<uint8_t>(bytes[6]);
  const uint64_t prefix = h.major == 1 ? kPrefix1 : kPrefix2;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + prefix, h.data_offset - prefix);
  Literal(text, prefix, h.major, where).parse(h);
  h.nbytes = ckpt::sdk::checked_nbytes(h.shape, ckpt::sdk::dtype_size(h.dtype), where + " (shape)");
  return h;
}

const char* npy_descr(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_BOOL: return "|b1";
    case CKPT_DTYPE_I8: return "|i1";
    case CKPT_DTYPE_U8: return "|u1";
    case CKPT_DTYPE_I16: return "<i2";
    case CKPT_DTYPE_U16: return "<u2";
    case CKPT_DTYPE_I32: return "<i4";
    case CKPT_DTYPE_U32: return "<u4";
    case CKPT_DTYPE_I64: return "<i8";
    case CKPT_DTYPE_U64: return "<u8";
    case CKPT_DTYPE_F16: return "<f2";
    case CKPT_DTYPE_F32: return "<f4";
    case CKPT_DTYPE_F64: return "<f8";
    case CKPT_DTYPE_C64: return "<c8";
    case CKPT_DTYPE_C128: return "<c16";
    default: return nullptr;
  }
}

std::string make_npy_header(uint32_t dtype, std::span<const int64_t> shape) {
  const char* descr = npy_descr(dtype);
  if (!descr) fail(CKPT_ERR_UNSUPPORTED, std::string("NumPy has no dtype for ") + ckpt::sdk::dtype_name(dtype));
  // Python's repr of a tuple: "()", "(3,)", "(2, 3)".
  std::string tuple = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) tuple += ", ";
    tuple += std::to_string(shape[i]);
  }
  tuple += shape.size() == 1 ? ",)" : ")";
  std::string text = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + tuple + ", }";
  // GROWTH_AXIS_MAX_DIGITS (21) less the digits of the first axis: room to grow it in place.
  if (!shape.empty()) {
    const size_t digits = std::to_string(shape[0]).size();
    if (digits < 21) text.append(21 - digits, ' ');
  }
  // _wrap_header: the text, then spaces and a newline to the next multiple of 64 (a whole 64
  // when already there, as numpy pads).
  const uint64_t hlen = text.size() + 1;
  int major = 1;
  uint64_t prefix = kPrefix1;
  uint64_t pad = kAlign - (prefix + hlen) % kAlign;
  if (hlen + pad > 0xffff) {
    major = 2;
    prefix = kPrefix2;
    pad = kAlign - (prefix + hlen) % kAlign;
  }
  const uint64_t len = hlen + pad;
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(major);
  out += '\0';
  for (uint64_t k = 0; k < prefix - 8; ++k) out += static_cast<char>((len >> (8 * k)) & 0xff);
  out += text;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

void to_tensor_layout(const NpyHeader& h, std::span<const std::byte> src, std::span<std::byte> dst) {
  if (src.size() != h.nbytes || dst.size() != h.nbytes) fail(CKPT_ERR_INTERNAL, "to_tensor_layout: sizes disagree");
  if (h.nbytes == 0) return;
  const size_t item = ckpt::sdk::dtype_size(h.dtype);
  const size_t rank = h.shape.size();
  if (!h.fortran || rank <= 1) {
    std::memcpy(dst.data(), src.data(), h.nbytes);
  } else {
    // Output in C order (last axis fastest); the source index moves by Fortran strides (first
    // axis fastest).
    std::vector<uint64_t> stride(rank), index(rank, 0);
    uint64_t s = item;
    for (size_t k = 0; k < rank; ++k) {
      stride[k] = s;
      s *= static_cast<uint64_t>(h.shape[k]);
    }
    const std::byte* from = src.data();
    std::byte* out = dst.data();
    const uint64_t count = h.nbytes / item;
    const uint64_t last_stride = stride[rank - 1];
    const uint64_t last_dim = static_cast<uint64_t>(h.shape[rank - 1]);
    uint64_t at = 0;  // source offset of index
    for (uint64_t done = 0; done < count; done += last_dim) {
      // The innermost axis in one run.
      const std::byte* p = from + at;
      for (uint64_t i = 0; i < last_dim; ++i, p += last_stride, out += item) std::memcpy(out, p, item);
      // Advance the outer axes (rank - 2 .. 0) as an odometer.
      for (size_t k = rank - 1; k-- > 0;) {
        at += stride[k];
        if (++index[k] < static_cast<uint64_t>(h.shape[k])) break;
        at -= stride[k] * index[k];
        index[k] = 0;
      }
    }
  }
  if (h.swap) {
    const size_t number = ckpt::sdk::dtype_number_size(h.dtype);
    for (uint64_t k = 0; k < h.nbytes; k += number) std::reverse(dst.data() + k, dst.data() + k + number);
  }
}

}  // namespace ckpt_numpy
