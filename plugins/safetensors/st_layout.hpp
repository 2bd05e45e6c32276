// The on-disk vocabulary of safetensors and of ckpt's use of it (docs/formats/safetensors.md),
// shared by the writer, the reader and identify so the three cannot drift apart.
#pragma once

#include <ckpt/plugin_abi.h>

#include <cstdint>
#include <string_view>

namespace ckpt_safetensors {

// The reference implementation refuses larger headers; so do we, before allocating anything.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// The data section starts at a multiple of this (the header is padded with spaces), so mapped
// tensors are aligned for SIMD loads; the reference pads to 8.
inline constexpr uint64_t kDataAlignment = 64;

// When the data start must be fixed before the header is known, it is kDataPageOffset past a
// multiple of this, so that growing the header later can insert whole file-system blocks
// (FALLOC_FL_INSERT_RANGE) in the padding just before the data.
inline constexpr uint64_t kReserveGranule = 4096;

// Not 0: loads copy tensors out of the page cache into buffers that malloc places 16 bytes past
// a page, and the kernel's copy (rep movsb) runs at a third of its speed when the destination
// is 1-31 bytes past the source modulo 4096 (measured on this project's AMD EPYC machines;
// benchmarks/README.md). 64 bytes past a page keeps the SIMD alignment and stays clear of that
// window for destinations 0, 16 and 64 bytes past a page.
inline constexpr uint64_t kDataPageOffset = 64;

// Tensor bytes kept in memory before the data start is fixed (writer option "staging_bytes").
inline constexpr uint64_t kDefaultStagingBytes = uint64_t{16} << 20;

inline constexpr std::string_view kMetadataKey = "__metadata__";
// The __metadata__ entry holding the ckpt document's non-tensor tree as JSON.
inline constexpr std::string_view kDocumentKey = "ckpt.document";
inline constexpr std::string_view kDocumentFormat = "ckpt-safetensors";
// A plain file's meta/integrity (the hashes ckpt records in every file it writes), compactly:
// {"algorithm", "digests", "manifest", "manifest_encoding"}, the digests' 8 bytes each
// (big-endian, as their hex reads), concatenated in the bytewise order of the tensors' keys
// (which are the paths), in base64 without padding. A million tensors cost 10.7 MB of header,
// where their paths and hex digests would take 50 (safetensors readers allow 100 in all).
inline constexpr std::string_view kIntegrityKey = "ckpt.integrity";
inline constexpr int64_t kDocumentVersion = 1;
// Tensors that share another's storage (tied weights, meta/@tensor_aliases in the document)
// are written once, like Hugging Face's own writer does: this entry, a JSON object of
// {"alias key": "key of the tensor holding its bytes"}, lets the document entry name them.
// Only in files with a document entry; each alias is named by it exactly once.
inline constexpr std::string_view kAliasesKey = "ckpt.aliases";
// The document's meta attribute naming tied tensors: a string array of pairs, each a tensor's
// path and the path of the tensor it shares storage with (docs/schema.md).
inline constexpr std::string_view kTensorAliasesAttribute = "tensor_aliases";
// Hugging Face loaders refuse a file with __metadata__ but no "format"; the writer adds this
// when the root has no string attribute "format" of its own.
inline constexpr std::string_view kFormatTagKey = "format";
inline constexpr std::string_view kFormatTagValue = "pt";

// Nesting of groups in the document entry; real checkpoints nest a handful of levels.
inline constexpr size_t kMaxDepth = 1000;

// JSON values in the document entry. The entry is parsed into a DOM of about 16 bytes per value
// whatever the text, so this bounds the memory a hostile header can claim (a real checkpoint
// has a few per attribute, and two integrity strings per tensor).
inline constexpr size_t kMaxDocumentValues = size_t{1} << 22;

// The safetensors dtype names of the ckpt dtypes.
inline const char* st_dtype_name(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_F64: return "F64";
    case CKPT_DTYPE_F32: return "F32";
    case CKPT_DTYPE_F16: return "F16";
    case CKPT_DTYPE_BF16: return "BF16";
    case CKPT_DTYPE_I64: return "I64";
    case CKPT_DTYPE_I32: return "I32";
    case CKPT_DTYPE_I16: return "I16";
    case CKPT_DTYPE_I8: return "I8";
    case CKPT_DTYPE_U8: return "U8";
    case CKPT_DTYPE_BOOL: return "BOOL";
    case CKPT_DTYPE_U16: return "U16";
    case CKPT_DTYPE_U32: return "U32";
    case CKPT_DTYPE_U64: return "U64";
    case CKPT_DTYPE_F8_E4M3FN: return "F8_E4M3";
    case CKPT_DTYPE_F8_E5M2: return "F8_E5M2";
    case CKPT_DTYPE_C64: return "C64";
    default: return nullptr;
  }
}

// 0 when `name` is not one of ours.
inline uint32_t st_dtype_from_name(std::string_view name) {
  for (uint32_t d = CKPT_DTYPE_F32; d <= CKPT_DTYPE_LAST; ++d)
    if (const char* n = st_dtype_name(d); n && name == n) return d;
  return 0;
}

// Names the safetensors specification defines that ckpt has no dtype for: a file using them
// is valid but unsupported, not corrupt.
inline bool is_foreign_dtype(std::string_view name) {
  for (std::string_view n : {"F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"})
    if (name == n) return true;
  return false;
}

}  // namespace ckpt_safetensors
