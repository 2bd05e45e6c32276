// The GGUF layout (ggml's docs/gguf.md, version 3; version 2 reads the same): what the reader
// and the writer share. Little-endian throughout.
//
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x  { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 dims[n_dims] (innermost first) | u32 ggml_type | u64 offset }
//   zero padding to general.alignment (default 32)
//   tensor data, each tensor at data_start + offset, offsets multiples of the alignment
//
// A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_gguf {

inline constexpr char kMagic[] = "GGUF";
inline constexpr uint32_t kVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;
// The spec's limits: a tensor name is at most 64 bytes, a key at most 65535; tensors have at
// most 4 dimensions (ggml's GGML_MAX_DIMS). ggml refuses a name of 64 bytes (it keeps 63 and a
// NUL), and so does the reader, past the spec's limit.
inline constexpr uint64_t kMaxNameBytes = 64;
// ggml itself keeps names in 64 bytes with their NUL: what the writer writes stays below.
inline constexpr uint64_t kMaxWrittenNameBytes = 63;
inline constexpr uint64_t kMaxKeyBytes = 65535;
inline constexpr uint32_t kMaxDims = 4;
// Arrays of arrays nest at most this deep (a bound of ckpt's, against a stack overflow).
inline constexpr int kMaxArrayDepth = 32;
// general.alignment: a power of two of at most 64 KiB by default (a bound of ckpt's: the
// padding it asks for is bytes of every file written; the reader's option max_alignment
// raises it up to kMaxReadAlignment). ggml reads the key as a u32 and asserts on any other type.
inline constexpr uint64_t kMaxAlignment = uint64_t{64} << 10;
inline constexpr uint64_t kMaxReadAlignment = uint64_t{1} << 30;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

// Keys of ckpt's own (the spec asks communities for a namespace), read back and never listed:
// document names that GGUF's 64 bytes cannot hold, shapes of more than 4 dimensions, and the
// filler a streamed save may need between its header and its data.
inline constexpr std::string_view kNamesKey = "ckpt.tensor_names";
inline constexpr std::string_view kShapesKey = "ckpt.tensor_shapes";
inline constexpr std::string_view kPaddingKey = "ckpt.padding";
// ckpt's record of hashes (docs/schema.md, meta/integrity), which the writer makes of what it
// writes and the reader gives back as meta/integrity: every key under the prefix is the
// record's, and the record is these four keys or none.
inline constexpr std::string_view kIntegrityPrefix = "ckpt.integrity";
inline constexpr std::string_view kIntegrityAlgorithmKey = "ckpt.integrity.algorithm";
inline constexpr std::string_view kIntegrityDigestsKey = "ckpt.integrity.digests";
inline constexpr std::string_view kIntegrityManifestKey = "ckpt.integrity.manifest";
inline constexpr std::string_view kIntegrityEncodingKey = "ckpt.integrity.manifest_encoding";
// Root attributes of the document that say how to write it back exactly (never GGUF keys:
// ':' is not in a key's alphabet).
inline constexpr std::string_view kTypesAttribute = "gguf:types";
inline constexpr std::string_view kVersionAttribute = "gguf:version";

enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12
};
inline constexpr uint32_t kLastValueType = kF64;

// "u8", "i32", "f32", "bool", "string", ... ("array" for kArray); nullptr when unknown.
const char* value_type_name(uint32_t t);
uint32_t value_type_from_name(std::string_view name);  // kLastValueType + 1 when unknown
// Bytes of one element of a fixed-size type (0 for string and array).
uint64_t value_type_size(uint32_t t);
bool is_integer_type(uint32_t t);

// A GGUF value type in full: "u32", "array[string]", "array[array[i32]]"; `depth` arrays
// around `scalar` (kArray as `scalar` for an empty array of arrays: "array[array]").
struct TypeDesc {
  uint32_t scalar = kU8;
  int depth = 0;
  std::string name() const;
  static std::optional<TypeDesc> parse(std::string_view text);
  bool operator==(const TypeDesc&) const = default;
};

// ggml's tensor types that ckpt holds, both ways (0 = none).
uint32_t dtype_of_ggml(uint32_t ggml_type);
std::optional<uint32_t> ggml_of_dtype(uint32_t dtype);
// ggml's block of a ggml type: elements per block and bytes per block (ggml's type_traits);
// nullopt for a number no ggml type has, or one ggml has retired (blck_size 0: Q4_2, Q4_3, the
// Q4_0_4_4 and IQ4_NL_4_4 families), which ggml's reader refuses.
struct GgmlBlock {
  uint64_t elements, bytes;
};
std::optional<GgmlBlock> ggml_block(uint32_t ggml_type);
// ggml's name for a ggml type ("Q4_K", "IQ2_XXS"), or its number.
std::string ggml_type_name(uint32_t ggml_type);

inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// The type the writer gives a value that has no recorded type: bool, i64, f64, string and
// arrays of those, but u32 for the keys the spec types so (general.alignment,
// general.quantization_version).
TypeDesc default_type(std::string_view key, uint32_t ckpt_value_type);

// A document name for a GGUF tensor name or key (and back): a name that is no document name
// (empty, or holding '/' or NUL) or that holds '%' is escaped (sdk::escape_name), so every name
// that holds '%' in the document is an escape; the writer undoes exactly that escape (a name
// with a '%' that is no escape's output is written as it is).
std::string document_name(std::string_view gguf_name);
std::string gguf_name_of(std::string_view document_name);

// The GGUF name of at most kMaxWrittenNameBytes the writer gives a longer one (try `salt` 0, 1,
// ... until unused): its first 45 bytes (whole UTF-8 characters), '~' and a 64-bit hash.
std::string shortened_name(std::string_view long_name, uint64_t salt);

std::string quote(std::string_view s);  // for messages: printable, bounded

}  // namespace ckpt_gguf
