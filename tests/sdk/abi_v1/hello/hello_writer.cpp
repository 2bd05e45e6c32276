#include "hello.hpp"

#include <bit>

namespace hello {

namespace {
constexpr char kDigits[] = "0123456789abcdef";
std::string netstring(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }
// The bits, not a decimal rendering: -0.0, infinities and NaN payloads come back exactly.
std::string bits(double d) {
  std::string out(16, '0');
  for (auto [i, b] = std::pair{16, std::bit_cast<uint64_t>(d)}; i-- > 0; b >>= 4) out[i] = kDigits[b & 15];
  return out;
}
}  // namespace

void Writer::begin_group(std::string_view name, uint64_t, uint64_t) { out_.write("G " + netstring(name) + "\n"); }

void Writer::attribute(std::string_view name, const ckpt_value& v) {
  if (v.type < CKPT_VALUE_BOOL || v.type > CKPT_VALUE_STRING_ARRAY)
    ckpt::sdk::fail(CKPT_ERR_UNSUPPORTED, "attribute '" + std::string(name) + "' has unknown type " + std::to_string(v.type));
  const bool array = v.type >= CKPT_VALUE_BOOL_ARRAY;
  const char letter = kTypeLetters[(v.type - 1) % 4];
  std::string line = "A " + netstring(name) + " " + char(array ? letter - 'a' + 'A' : letter);
  if (array) line += " " + std::to_string(v.count);
  for (uint64_t i = 0; i < (array ? v.count : 1); ++i) {
    line += ' ';
    switch (v.type) {
      case CKPT_VALUE_BOOL: line += v.u.b ? '1' : '0'; break;
      case CKPT_VALUE_BOOL_ARRAY: line += v.u.bools[i] ? '1' : '0'; break;
      case CKPT_VALUE_INT64: line += std::to_string(v.u.i); break;
      case CKPT_VALUE_INT64_ARRAY: line += std::to_string(v.u.ints[i]); break;
      case CKPT_VALUE_FLOAT64: line += bits(v.u.f); break;
      case CKPT_VALUE_FLOAT64_ARRAY: line += bits(v.u.floats[i]); break;
      case CKPT_VALUE_STRING: line += netstring({v.u.s.data, v.u.s.size}); break;
      default: line += netstring({v.u.strings[i].data, v.u.strings[i].size});
    }
  }
  out_.write(line + "\n");
}

void Writer::tensor(const ckpt::sdk::TensorInfo& t, std::span<const std::byte> data) {
  const char* dtype = ckpt::sdk::dtype_name(t.dtype);
  if (!dtype) ckpt::sdk::fail(CKPT_ERR_UNSUPPORTED, "tensor '" + std::string(t.name) + "' has unknown dtype " + std::to_string(t.dtype));
  if (ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), std::string(t.name)) != data.size())
    ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(t.name) + "': its bytes do not match its shape");
  std::string line = "T " + netstring(t.name) + " " + dtype + " " + std::to_string(t.shape.size());
  for (int64_t d : t.shape) line += " " + std::to_string(d);
  out_.write(line + " ");
  char buf[8192];  // hex in pieces: a tensor is never held twice
  for (size_t at = 0; at < data.size(); at += sizeof buf / 2) {
    const size_t n = std::min(sizeof buf / 2, data.size() - at);
    for (size_t i = 0; i < n; ++i) {
      buf[2 * i] = kDigits[static_cast<unsigned>(data[at + i]) >> 4];
      buf[2 * i + 1] = kDigits[static_cast<unsigned>(data[at + i]) & 15];
    }
    out_.write(buf, 2 * n);
  }
  out_.write("\n");
}

}  // namespace hello
