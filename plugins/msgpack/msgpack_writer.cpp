#include "msgpack_writer.hpp"

#include "msgpack_layout.hpp"

#include <array>
#include <bit>

namespace ckpt_msgpack {

using ckpt::sdk::fail;

namespace {

uint32_t checked_length(uint64_t n, const std::string& what) {
  if (n > kMaxLength)
    fail(CKPT_ERR_UNSUPPORTED, what + " has " + std::to_string(n) +
                                   " entries or bytes; MessagePack holds at most 2^32-1");
  return static_cast<uint32_t>(n);
}

}  // namespace

MsgpackWriter::MsgpackWriter(const std::string& path) : LayoutWriter("msgpack"), out_(path), pk_(out_) {}

template <class Packer>
void MsgpackWriter::pack_text(Packer& p, std::string_view s) {
  uint32_t n = checked_length(s.size(), "a string");
  p.pack_str(n);
  p.pack_str_body(s.data(), n);
}

template <class Packer>
void MsgpackWriter::pack_name(Packer& p, std::string_view name) {
  if (!needs_escape(name)) return pack_text(p, name);
  uint32_t n = checked_length(name.size() + 1, "a name");
  p.pack_str(n);
  p.pack_str_body("$", 1);
  p.pack_str_body(name.data(), n - 1);
}

void MsgpackWriter::open_root(uint64_t members) {
  pk_.pack_map(checked_length(members + 2, "the root group"));  // and $format, $version
  pack_text(pk_, kFormatKey);
  pack_text(pk_, kFormatValue);
  pack_text(pk_, kVersionKey);
  pk_.pack_uint64(kVersion);
}

void MsgpackWriter::open_group(std::string_view name, uint64_t members) {
  pack_name(pk_, name);
  pk_.pack_map(checked_length(members, "group '" + path_of(name) + "'"));
}

void MsgpackWriter::open_attrs(uint64_t n) {
  pack_text(pk_, kAttrsKey);
  pk_.pack_map(checked_length(n, "the attributes of group '" + path_of("") + "'"));
}

void MsgpackWriter::write_attribute(std::string_view name, const ckpt_value& value, const std::string& where) {
  pack_name(pk_, name);
  pack_value(value, where);
}

// Always float 64 (0xcb): msgpack-cxx's pack_double writes integral values such as 2.0 or
// -0.0 as ints, which would read back as int64 (and lose the sign of zero).
void MsgpackWriter::pack_float64(double d) {
  const auto bits = std::bit_cast<uint64_t>(d);
  char buf[9];
  buf[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  out_.write(buf, sizeof buf);
}

void MsgpackWriter::pack_value(const ckpt_value& v, const std::string& what) {
  const uint64_t n = v.count;
  // Empty arrays carry their element type explicitly: a bare [] would read back untyped.
  if (const char* type = array_type_name(v.type); type && n == 0) {
    pk_.pack_map(2);
    pack_text(pk_, kTypeKey);
    pack_text(pk_, type);
    pack_text(pk_, kValueKey);
    pk_.pack_array(0);
    return;
  }
  switch (v.type) {
    case CKPT_VALUE_BOOL:
      v.u.b ? pk_.pack_true() : pk_.pack_false();
      return;
    case CKPT_VALUE_INT64:
      pk_.pack_int64(v.u.i);
      return;
    case CKPT_VALUE_FLOAT64:
      pack_float64(v.u.f);
      return;
    case CKPT_VALUE_STRING:
      pack_text(pk_, {v.u.s.data, v.u.s.size});
      return;
    case CKPT_VALUE_BOOL_ARRAY:
      pk_.pack_array(checked_length(n, what));
      for (uint64_t i = 0; i < n; ++i) v.u.bools[i] ? pk_.pack_true() : pk_.pack_false();
      return;
    case CKPT_VALUE_INT64_ARRAY:
      pk_.pack_array(checked_length(n, what));
      for (uint64_t i = 0; i < n; ++i) pk_.pack_int64(v.u.ints[i]);
      return;
    case CKPT_VALUE_FLOAT64_ARRAY:
      pk_.pack_array(checked_length(n, what));
      for (uint64_t i = 0; i < n; ++i) pack_float64(v.u.floats[i]);
      return;
    case CKPT_VALUE_STRING_ARRAY:
      pk_.pack_array(checked_length(n, what));
      for (uint64_t i = 0; i < n; ++i) pack_text(pk_, {v.u.strings[i].data, v.u.strings[i].size});
      return;
    default:
      fail(CKPT_ERR_INVALID_ARGUMENT,
           what + " has unknown value type " + std::to_string(v.type));
  }
}

void MsgpackWriter::write_tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data,
                                 const std::string& what) {
  const char* dtype = ckpt::sdk::dtype_name(info.dtype);
  const uint64_t nbytes = data.size();
  if (nbytes > kMaxLength)
    fail(CKPT_ERR_UNSUPPORTED, what + " has " + std::to_string(nbytes) +
                                   " bytes; a MessagePack bin holds at most 4 GiB - 1");
  pack_name(pk_, info.name);

  head_.bytes.clear();
  msgpack::packer<HeaderBuffer> head(head_);
  pack_text(head, kDtypeKey);
  pack_text(head, dtype);
  pack_text(head, kShapeKey);
  head.pack_array(checked_length(info.shape.size(), what + "'s shape"));
  for (int64_t d : info.shape) head.pack_int64(d);

  tail_.bytes.clear();
  msgpack::packer<HeaderBuffer> tail(tail_);
  pack_text(tail, kDataKey);
  tail.pack_bin(static_cast<uint32_t>(nbytes));

  // Where the payload would start with no padding; the map header is one byte (fixmap).
  const uint64_t unpadded = out_.offset() + 1 + head_.bytes.size() + tail_.bytes.size();
  if (unpadded % kAlignment == 0) {
    pk_.pack_map(3);
    out_.write(head_.bytes);
  } else {
    // "$pad" (5 bytes) and a bin8 header (2 bytes) come before the k padding bytes.
    constexpr uint64_t pad_entry = 5 + 2;
    const uint64_t k = (kAlignment - (unpadded + pad_entry) % kAlignment) % kAlignment;
    static constexpr std::array<char, kAlignment> zeros{};
    pk_.pack_map(4);
    out_.write(head_.bytes);
    pack_text(pk_, kPadKey);
    pk_.pack_bin(static_cast<uint32_t>(k));
    out_.write(zeros.data(), k);
  }
  out_.write(tail_.bytes);
  if (out_.offset() % kAlignment != 0)
    fail(CKPT_ERR_INTERNAL, what + ": payload would start at unaligned offset " +
                                std::to_string(out_.offset()));
  if (nbytes > 0) out_.write(static_cast<const void*>(data.data()), nbytes);
}

}  // namespace ckpt_msgpack
