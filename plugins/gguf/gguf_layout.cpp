#include "gguf_layout.hpp"

#include <ckpt/sdk_names.hpp>

#include <algorithm>
#include <cstdio>

namespace ckpt_gguf {

namespace {
constexpr const char* kValueTypeNames[] = {"u8",     "i8",    "u16", "i16", "u32", "i32", "f32",
                                           "bool",   "string", "array", "u64", "i64", "f64"};
}  // namespace

const char* value_type_name(uint32_t t) { return t <= kLastValueType ? kValueTypeNames[t] : nullptr; }

uint32_t value_type_from_name(std::string_view name) {
  for (uint32_t t = 0; t <= kLastValueType; ++t)
    if (name == kValueTypeNames[t]) return t;
  return kLastValueType + 1;
}

uint64_t value_type_size(uint32_t t) {
  switch (t) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

bool is_integer_type(uint32_t t) {
  return t == kU8 || t == kI8 || t == kU16 || t == kI16 || t == kU32 || t == kI32 || t == kU64 || t == kI64;
}

std::string TypeDesc::name() const {
  std::string s = value_type_name(scalar);
  for (int i = 0; i < depth; ++i) s = "array[" + s + "]";
  return s;
}

std::optional<TypeDesc> TypeDesc::parse(std::string_view text) {
  TypeDesc d;
  while (text.size() > 7 && text.substr(0, 6) == "array[" && text.back() == ']') {
    text = text.substr(6, text.size() - 7);
    if (++d.depth > kMaxArrayDepth) return std::nullopt;
  }
  d.scalar = value_type_from_name(text);
  if (d.scalar > kLastValueType) return std::nullopt;
  // "array" alone is the element type of an empty array of arrays only (what the reader
  // records for one at any depth: "array[array]", "array[array[array]]").
  if (d.scalar == kArray && d.depth < 1) return std::nullopt;
  return d;
}

uint32_t dtype_of_ggml(uint32_t t) {
  switch (t) {
    case 0: return CKPT_DTYPE_F32;
    case 1: return CKPT_DTYPE_F16;
    case 2: return CKPT_DTYPE_Q4_0;
    case 3: return CKPT_DTYPE_Q4_1;
    case 6: return CKPT_DTYPE_Q5_0;
    case 7: return CKPT_DTYPE_Q5_1;
    case 8: return CKPT_DTYPE_Q8_0;
    case 10: return CKPT_DTYPE_Q2_K;
    case 11: return CKPT_DTYPE_Q3_K;
    case 12: return CKPT_DTYPE_Q4_K;
    case 13: return CKPT_DTYPE_Q5_K;
    case 14: return CKPT_DTYPE_Q6_K;
    case 24: return CKPT_DTYPE_I8;
    case 25: return CKPT_DTYPE_I16;
    case 26: return CKPT_DTYPE_I32;
    case 27: return CKPT_DTYPE_I64;
    case 28: return CKPT_DTYPE_F64;
    case 30: return CKPT_DTYPE_BF16;
    default: return 0;
  }
}

std::optional<uint32_t> ggml_of_dtype(uint32_t dtype) {
  for (uint32_t t = 0; t <= 30; ++t)
    if (dtype_of_ggml(t) == dtype) return t;
  return std::nullopt;
}

std::optional<GgmlBlock> ggml_block(uint32_t t) {
  static constexpr GgmlBlock blocks[] = {
      {1, 4},    {1, 2},    {32, 18},  {32, 20},  {0, 0},    {0, 0},    {32, 22},  {32, 24},  {32, 34},  {32, 36},
      {256, 84}, {256, 110}, {256, 144}, {256, 176}, {256, 210}, {256, 292}, {256, 66}, {256, 74}, {256, 98}, {256, 50},
      {32, 18},  {256, 110}, {256, 82}, {256, 136}, {1, 1},    {1, 2},    {1, 4},    {1, 8},    {1, 8},    {256, 56},
      {1, 2},    {0, 0},    {0, 0},    {0, 0},    {256, 54}, {256, 66}, {0, 0},    {0, 0},    {0, 0},    {32, 17}};
  if (t >= sizeof blocks / sizeof blocks[0] || blocks[t].elements == 0) return std::nullopt;
  return blocks[t];
}

std::string ggml_type_name(uint32_t t) {
  static constexpr const char* names[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",   "Q4_2", "Q4_3",   "Q5_0",   "Q5_1",   "Q8_0",    "Q8_1",   "Q2_K",
      "Q3_K",    "Q4_K",   "Q5_K",    "Q6_K",   "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",  "IQ4_NL", "IQ3_S",
      "IQ2_S",   "IQ4_XS", "I8",      "I16",    "I32",  "I64",    "F64",    "IQ1_M",  "BF16",    "Q4_0_4_4", "Q4_0_4_8",
      "Q4_0_8_8", "TQ1_0", "TQ2_0",   "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
  if (t < sizeof names / sizeof names[0]) return std::string(names[t]) + " (" + std::to_string(t) + ")";
  return "type " + std::to_string(t);
}

TypeDesc default_type(std::string_view key, uint32_t v) {
  switch (v) {
    case CKPT_VALUE_BOOL: return {kBool, 0};
    case CKPT_VALUE_INT64:
      return {key == "general.alignment" || key == "general.quantization_version" ? kU32 : kI64, 0};
    case CKPT_VALUE_FLOAT64: return {kF64, 0};
    case CKPT_VALUE_STRING: return {kString, 0};
    case CKPT_VALUE_BOOL_ARRAY: return {kBool, 1};
    case CKPT_VALUE_INT64_ARRAY: return {kI64, 1};
    case CKPT_VALUE_FLOAT64_ARRAY: return {kF64, 1};
    case CKPT_VALUE_STRING_ARRAY: return {kString, 1};
    default: return {kString, 0};
  }
}

namespace {
bool valid_document_name(std::string_view n) {
  return !n.empty() && n.find('/') == std::string_view::npos && n.find('\0') == std::string_view::npos;
}
}  // namespace

std::string document_name(std::string_view g) {
  return valid_document_name(g) && g.find('%') == std::string_view::npos ? std::string(g) : ckpt::sdk::escape_name(g);
}

std::string gguf_name_of(std::string_view d) {
  if (d.find('%') == std::string_view::npos) return std::string(d);
  auto u = ckpt::sdk::unescape_name(d);
  if (u && ckpt::sdk::escape_name(*u) == d) return *u;
  return std::string(d);
}

std::string shortened_name(std::string_view n, uint64_t salt) {
  uint64_t h = 0xcbf29ce484222325ull ^ salt;
  for (unsigned char c : n) h = (h ^ c) * 0x100000001b3ull;
  size_t keep = std::min<size_t>(45, n.size());
  while (keep > 0 && keep < n.size() && (static_cast<unsigned char>(n[keep]) & 0xc0) == 0x80) --keep;
  char tail[24];
  std::snprintf(tail, sizeof tail, "~%016llx", static_cast<unsigned long long>(h));
  return std::string(n.substr(0, keep)) + tail;
}

std::string quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 200; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

}  // namespace ckpt_gguf
