#include "msgpack_writer.hpp"

#include "msgpack_layout.hpp"

#include <array>
#include <bit>

namespace ckpt_msgpack {

using ckpt::sdk::fail;

namespace {

std::string shape_text(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

uint32_t checked_length(uint64_t n, const std::string& what) {
  if (n > kMaxLength)
    fail(CKPT_ERR_UNSUPPORTED, what + " has " + std::to_string(n) +
                                   " entries or bytes; MessagePack holds at most 2^32-1");
  return static_cast<uint32_t>(n);
}

}  // namespace

MsgpackWriter::MsgpackWriter(const std::string& path) : out_(path), pk_(out_) {}

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

std::string MsgpackWriter::where() const {
  std::string path;
  for (size_t i = 1; i < stack_.size(); ++i) path += (i > 1 ? "/" : "") + stack_[i].name;
  return path.empty() ? "the root group" : "group '" + path + "'";
}

MsgpackWriter::OpenGroup& MsgpackWriter::current(const char* event) {
  if (stack_.empty())
    fail(CKPT_ERR_INVALID_ARGUMENT,
         std::string(event) + " outside any group (the root group is " +
             (root_done_ ? "already closed)" : "not open yet)"));
  return stack_.back();
}

void MsgpackWriter::claim_child(std::string_view name, const char* event) {
  OpenGroup& g = current(event);
  if (name.empty() || name.find('/') != std::string_view::npos)
    fail(CKPT_ERR_INVALID_ARGUMENT, "invalid name '" + std::string(name) + "' in " + where() +
                                        ": names are non-empty and hold no '/'");
  if (g.attributes_left != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " '" + std::string(name) + "' in " +
                                        where() + " before its " +
                                        std::to_string(g.attributes_left) +
                                        " announced attributes");
  if (g.children_left == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " '" + std::string(name) + "' in " +
                                        where() + " beyond its announced children");
  if (!g.child_names.emplace(name).second)
    fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate child '" + std::string(name) + "' in " + where());
  --g.children_left;
}

void MsgpackWriter::begin_group(std::string_view name, uint64_t n_attributes,
                                uint64_t n_children) {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group after finish");
  const bool root = stack_.empty();
  uint64_t entries = (n_attributes > 0 ? 1 : 0) + n_children;
  if (root) {
    if (root_done_) fail(CKPT_ERR_INVALID_ARGUMENT, "a second root group");
    if (!name.empty())
      fail(CKPT_ERR_INVALID_ARGUMENT, "the root group must be named \"\", got '" +
                                          std::string(name) + "'");
    entries += 2;  // $format, $version
    pk_.pack_map(checked_length(entries, "the root group"));
    pack_text(pk_, kFormatKey);
    pack_text(pk_, kFormatValue);
    pack_text(pk_, kVersionKey);
    pk_.pack_uint64(kVersion);
  } else {
    claim_child(name, "group");
    pack_name(pk_, name);
    pk_.pack_map(checked_length(entries, "group '" + std::string(name) + "'"));
  }
  stack_.push_back({std::string(name), n_attributes, n_children, {}, {}});
  if (n_attributes > 0) {
    pack_text(pk_, kAttrsKey);
    pk_.pack_map(checked_length(n_attributes, "the attributes of " + where()));
  }
}

void MsgpackWriter::end_group() {
  OpenGroup& g = current("end_group");
  if (g.attributes_left != 0 || g.children_left != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, "end of " + where() + " with " +
                                        std::to_string(g.attributes_left) + " attributes and " +
                                        std::to_string(g.children_left) +
                                        " children still announced");
  stack_.pop_back();
  if (stack_.empty()) root_done_ = true;
}

void MsgpackWriter::attribute(std::string_view name, const ckpt_value& value) {
  OpenGroup& g = current("attribute");
  if (name.empty() || name.find('/') != std::string_view::npos)
    fail(CKPT_ERR_INVALID_ARGUMENT, "invalid attribute name '" + std::string(name) + "' in " +
                                        where() + ": names are non-empty and hold no '/'");
  if (g.attributes_left == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, "attribute '" + std::string(name) + "' in " + where() +
                                        " beyond its announced attributes");
  if (!g.attribute_names.emplace(name).second)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         "duplicate attribute '" + std::string(name) + "' in " + where());
  --g.attributes_left;
  pack_name(pk_, name);
  pack_value(value, name);
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

void MsgpackWriter::pack_value(const ckpt_value& v, std::string_view name) {
  const uint64_t n = v.count;
  const std::string what = "attribute '" + std::string(name) + "'";
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

void MsgpackWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  const std::string what = "tensor '" + std::string(info.name) + "' in " +
                           (stack_.empty() ? std::string("no group") : where());
  const char* dtype = ckpt::sdk::dtype_name(info.dtype);
  if (!dtype)
    fail(CKPT_ERR_INVALID_ARGUMENT, what + " has unknown dtype " + std::to_string(info.dtype));
  const uint64_t nbytes =
      ckpt::sdk::checked_nbytes(info.shape, ckpt::sdk::dtype_size(info.dtype), what);
  if (nbytes != info.nbytes || data.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, what + ": shape " + shape_text(info.shape) + " " + dtype +
                                        " needs " + std::to_string(nbytes) + " bytes, got " +
                                        std::to_string(data.size()));
  if (nbytes > kMaxLength)
    fail(CKPT_ERR_UNSUPPORTED, what + " has " + std::to_string(nbytes) +
                                   " bytes; a MessagePack bin holds at most 4 GiB - 1");
  claim_child(info.name, "tensor");
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

void MsgpackWriter::finish() {
  if (!root_done_ || !stack_.empty())
    fail(CKPT_ERR_INVALID_ARGUMENT, "finish before the root group was closed");
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish called twice");
  out_.close();
  finished_ = true;
}

}  // namespace ckpt_msgpack
