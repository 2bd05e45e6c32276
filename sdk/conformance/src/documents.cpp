#include "documents.hpp"

#include <ckpt/integrity.hpp>
#include <ckpt/plugin_abi.h>

#include <bit>
#include <cstring>
#include <limits>

namespace ckpt::conformance {

void Rng::fill(std::span<std::byte> out) {
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    uint64_t x = next();
    std::memcpy(out.data() + i, &x, 8);
  }
  if (i < out.size()) {
    uint64_t x = next();
    std::memcpy(out.data() + i, &x, out.size() - i);
  }
}

uint64_t mix_seed(uint64_t seed, std::string_view salt) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : salt) h = (h ^ c) * 0x100000001b3ull;
  return Rng(seed ^ h).next();
}

namespace {

template <class T>
void plant(Tensor& t, std::initializer_list<T> values) {
  auto out = t.mutable_bytes();
  size_t n = std::min(out.size() / sizeof(T), values.size());
  std::memcpy(out.data(), values.begin(), n * sizeof(T));
}

}  // namespace

Tensor random_tensor(DType dtype, const Shape& requested, Rng& rng) {
  // A block dtype's rows are whole blocks: its last dimension counts blocks instead (a scalar
  // is one block). Random bytes are valid blocks: every bit pattern decodes.
  Shape shape = requested;
  if (is_block(dtype)) {
    if (shape.empty()) shape.push_back(1);
    shape.back() *= static_cast<int64_t>(block_elements(dtype));
  }
  Tensor t = Tensor::empty(dtype, shape);
  rng.fill(t.mutable_bytes());
  switch (dtype) {
    case DType::f32:
      plant<uint32_t>(t, {0x7fc00000u, 0x7fc00001u, 0x7f800001u, 0xffc00000u, 0x7fa5a5a5u, 0x80000000u,
                          0x7f800000u, 0xff800000u, 0x00000001u, 0x007fffffu, 0x7f7fffffu, 0x00000000u});
      break;
    case DType::f64:
      plant<uint64_t>(t, {0x7ff8000000000000ull, 0x7ff8000000000001ull, 0x7ff0000000000001ull,
                          0xfff8000000000000ull, 0x7ff5a5a5a5a5a5a5ull, 0x8000000000000000ull,
                          0x7ff0000000000000ull, 0xfff0000000000000ull, 0x0000000000000001ull,
                          0x000fffffffffffffull, 0x7fefffffffffffffull, 0x0000000000000000ull});
      break;
    case DType::f16:
      plant<uint16_t>(t, {0x7e00, 0x7e01, 0x7c01, 0xfe00, 0x7d5a, 0x8000, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x7bff, 0x0000});
      break;
    case DType::bf16:
      plant<uint16_t>(t, {0x7fc0, 0x7fc1, 0x7f81, 0xffc0, 0x7fa5, 0x8000, 0x7f80, 0xff80, 0x0001, 0x007f, 0x7f7f, 0x0000});
      break;
    case DType::i8: plant<int8_t>(t, {-128, 127, 0, -1}); break;
    case DType::u8: plant<uint8_t>(t, {0, 255, 128, 127}); break;
    case DType::i16: plant<int16_t>(t, {-32768, 32767, 0, -1}); break;
    case DType::i32:
      plant<int32_t>(t, {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), 0, -1});
      break;
    case DType::i64:
      plant<int64_t>(t, {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0, -1,
                         (int64_t{1} << 53) + 1});
      break;
    case DType::boolean:
      for (auto& b : t.mutable_bytes()) b = static_cast<std::byte>(static_cast<uint8_t>(b) & 1);
      break;
    case DType::u16: plant<uint16_t>(t, {0, 65535, 32768, 1}); break;
    case DType::u32: plant<uint32_t>(t, {0, 0xffffffffu, 0x80000000u, 1}); break;
    case DType::u64:
      plant<uint64_t>(t, {0, ~uint64_t{0}, uint64_t{1} << 63, (uint64_t{1} << 53) + 1});
      break;
    // Every NaN code, the infinities, the largest finite value, the smallest subnormal, -0.
    case DType::f8_e4m3fn: plant<uint8_t>(t, {0x7f, 0xff, 0x7e, 0x01, 0x80, 0x00}); break;
    case DType::f8_e5m2: plant<uint8_t>(t, {0x7d, 0x7e, 0xff, 0x7c, 0xfc, 0x7b, 0x01, 0x80}); break;
    case DType::c64:
      plant<uint32_t>(t, {0x7fc00000u, 0x00000000u, 0x80000000u, 0x7f800000u, 0x7fa5a5a5u, 0xff800000u});
      break;
    case DType::c128:
      plant<uint64_t>(t, {0x7ff8000000000000ull, 0x8000000000000000ull, 0x7ff0000000000000ull,
                          0x0000000000000001ull, 0x7ff5a5a5a5a5a5a5ull, 0x0000000000000000ull});
      break;
    default:  // block dtypes: their bytes are blocks, no special values to plant
      break;
  }
  return t;
}

std::vector<DType> held_dtypes(const FormatInfo& info) {
  std::vector<DType> out;
  for (int d = static_cast<int>(kFirstDType); d <= static_cast<int>(kLastDType); ++d)
    if (info.holds(static_cast<DType>(d))) out.push_back(static_cast<DType>(d));
  return out;
}

std::vector<std::string> awkward_strings() {
  using namespace std::string_literals;
  std::string controls;
  for (int c = 1; c < 0x20; ++c) controls += static_cast<char>(c);
  controls += '\x7f';
  return {
      ""s,
      "plain"s,
      "\"double\" and 'single' quotes"s,
      "back\\slash \\\\ \\n \\u0000 \\\""s,
      "new\nline\r\nand\ttab"s,
      "nul\0inside"s,
      "\0"s,
      "\0\0trailing\0"s,
      controls,
      "Gewicht_\xc3\xa4 \xe6\x9d\x83\xe9\x87\x8d \xf0\x9f\x98\x80"s,                // ä 权重 😀
      "\xe2\x80\xa8line and paragraph separators\xe2\x80\xa9"s,                      // U+2028 U+2029
      "\xef\xbb\xbf" "byte order mark"s,                                            // U+FEFF
      "</script><!-- %s %n %d {} ${x} $(rm) `id` ]]>"s,
      std::string(70000, 'x') + "end",
  };
}

std::vector<int64_t> int64_extremes() {
  return {std::numeric_limits<int64_t>::min(),
          std::numeric_limits<int64_t>::max(),
          0,
          -1,
          (int64_t{1} << 53) + 1,  // first integer a double cannot hold
          -((int64_t{1} << 53) + 1),
          std::numeric_limits<int64_t>::min() + 1,
          std::numeric_limits<int64_t>::max() - 1};
}

std::vector<double> special_doubles() {
  return {std::numeric_limits<double>::quiet_NaN(),
          0.0,
          -0.0,
          std::numeric_limits<double>::infinity(),
          -std::numeric_limits<double>::infinity(),
          std::numeric_limits<double>::denorm_min(),
          -std::numeric_limits<double>::denorm_min(),
          std::bit_cast<double>(uint64_t{0x000fffffffffffff}),  // largest denormal
          std::numeric_limits<double>::min(),
          std::numeric_limits<double>::max(),
          -std::numeric_limits<double>::max(),
          std::numeric_limits<double>::epsilon(),
          0.1,
          1.0 / 3.0,
          -1e-300,
          123456789012345678.0};
}

std::vector<double> nan_payloads() {
  return {std::bit_cast<double>(uint64_t{0xfff8000000000000}),   // negative quiet NaN
          std::bit_cast<double>(uint64_t{0x7ff8000000000123}),   // quiet NaN with payload
          std::bit_cast<double>(uint64_t{0x7ff0000000000001}),   // signalling NaN
          std::bit_cast<double>(uint64_t{0xfff7ffffffffffff})};  // negative, all payload bits
}

std::vector<std::string> unicode_names() {
  return {
      "Gewicht_\xc3\xa4",                                       // Gewicht_ä
      "\xe6\x9d\x83\xe9\x87\x8d",                               // 权重
      "emoji_\xf0\x9f\x98\x80\xf0\x9f\xa7\xa0",                 // emoji_😀🧠
      "\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1",               // Ωμέγα
      "e\xcc\x81_combining",                                    // e + U+0301
      "\xd9\x88\xd8\xb2\xd9\x86",                               // وزن (right to left)
      "\xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88", // flag: a ZWJ sequence
      "\xe2\x80\x8bzero_width_space",                           // U+200B
  };
}

std::vector<std::string> key_like_names() {
  return {"dtype", "shape", "data", "offset", "attributes", "attrs", "children", "groups", "tensors", "type",
          "value", "name", "__proto__", "$type", "@id", "0", "1e3", "true", "null", "a b", "a.b", ".", "..",
          "-", "\"q\"", "back\\slash", "tab\tname", "new\nline"};
}

bool can_hold_integrity(const FormatInfo& info) {
  return info.can(CKPT_CAP_ATTRIBUTES) && info.can(CKPT_CAP_ATTRIBUTE_ARRAYS) && info.can(CKPT_CAP_NESTED_GROUPS);
}

Document representative(const FormatInfo& info, Rng& rng) {
  Document d;
  const bool attrs = info.can(CKPT_CAP_ATTRIBUTES);
  const bool arrays = attrs && info.can(CKPT_CAP_ATTRIBUTE_ARRAYS);
  const bool nested = info.can(CKPT_CAP_NESTED_GROUPS);
  auto dtypes = held_dtypes(info);
  if (dtypes.empty()) return d;

  if (attrs) {
    d.set("producer", "ckpt-conformance").set("step", int64_t{42}).set("lr", 0.125).set("resumed", false);
    if (arrays)
      d.set("sizes", std::vector<int64_t>{3, -1, 4}).set("tags", std::vector<std::string>{"a", "", "b c"});
  }
  for (DType t : dtypes) d.add_tensor("t_" + std::string(name(t)), random_tensor(t, {4, 3}, rng));
  d.add_tensor("scalar", random_tensor(dtypes.front(), {}, rng));
  d.add_tensor("empty", random_tensor(dtypes.back(), {0, 2}, rng));

  if (nested) {
    Group& state = d.group("model").group("state");
    state.add_tensor("fc1.weight", random_tensor(dtypes.front(), {6, 5}, rng));
    state.add_tensor("fc1.bias", random_tensor(dtypes.front(), {6}, rng));
    Group& opt = d.group("optimizer");
    if (attrs) opt.set("type", "adam").set("betas", arrays ? Value(std::vector<double>{0.9, 0.999}) : Value(0.9));
    opt.group("state").add_tensor("exp_avg", random_tensor(dtypes.back(), {6, 5}, rng));
  }
  if (can_hold_integrity(info)) add_integrity(d);
  return d;
}

}  // namespace ckpt::conformance
