#include "hello_writer.hpp"

#include "hello_text.hpp"

namespace hello {

using ckpt::sdk::fail;

Writer::Writer(const std::string& path) : out_(path) { out_.write(kHeader); }

void Writer::begin_group(std::string_view name, uint64_t, uint64_t) {
  out_.write("G " + netstring(name) + "\n");
}

void Writer::end_group() { out_.write("E\n"); }

void Writer::attribute(std::string_view name, const ckpt_value& v) {
  std::string line = "A " + netstring(name) + " ";
  auto each = [&](auto&& element) {
    line += std::to_string(v.count);
    for (uint64_t i = 0; i < v.count; ++i) line += " " + element(i);
  };
  switch (v.type) {
    case CKPT_VALUE_BOOL: line += "b " + std::string(v.u.b ? "1" : "0"); break;
    case CKPT_VALUE_INT64: line += "i " + std::to_string(v.u.i); break;
    // The bits, not a decimal rendering: -0.0, infinities and NaN payloads come back exactly.
    case CKPT_VALUE_FLOAT64: line += "f " + hex64(std::bit_cast<uint64_t>(v.u.f)); break;
    case CKPT_VALUE_STRING: line += "s " + netstring({v.u.s.data, v.u.s.size}); break;
    case CKPT_VALUE_BOOL_ARRAY:
      line += "B ";
      each([&](uint64_t i) { return std::string(v.u.bools[i] ? "1" : "0"); });
      break;
    case CKPT_VALUE_INT64_ARRAY:
      line += "I ";
      each([&](uint64_t i) { return std::to_string(v.u.ints[i]); });
      break;
    case CKPT_VALUE_FLOAT64_ARRAY:
      line += "F ";
      each([&](uint64_t i) { return hex64(std::bit_cast<uint64_t>(v.u.floats[i])); });
      break;
    case CKPT_VALUE_STRING_ARRAY:
      line += "S ";
      each([&](uint64_t i) { return netstring({v.u.strings[i].data, v.u.strings[i].size}); });
      break;
    default:
      fail(CKPT_ERR_UNSUPPORTED, "attribute '" + std::string(name) + "' has unknown type " + std::to_string(v.type));
  }
  out_.write(line + "\n");
}

void Writer::tensor(const ckpt::sdk::TensorInfo& t, std::span<const std::byte> data) {
  const char* dtype = ckpt::sdk::dtype_name(t.dtype);
  if (!dtype) fail(CKPT_ERR_UNSUPPORTED, "tensor '" + std::string(t.name) + "' has unknown dtype " + std::to_string(t.dtype));
  if (ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), std::string(t.name)) != data.size())
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(t.name) + "': its bytes do not match its shape");
  std::string line = "T " + netstring(t.name) + " " + dtype + " " + std::to_string(t.shape.size());
  for (int64_t d : t.shape) line += " " + std::to_string(d);
  out_.write(line + " ");
  hex(data);
  out_.put('\n');
}

void Writer::finish() { out_.close(); }

void Writer::hex(std::span<const std::byte> data) {
  char buf[8192];
  size_t n = 0;
  for (std::byte b : data) {
    buf[n++] = kHexDigits[static_cast<unsigned>(b) >> 4];
    buf[n++] = kHexDigits[static_cast<unsigned>(b) & 15];
    if (n == sizeof buf) {
      out_.write(buf, n);
      n = 0;
    }
  }
  out_.write(buf, n);
}

}  // namespace hello
