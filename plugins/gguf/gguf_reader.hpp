// Reads a GGUF file through one read-only mapping. The header (key-values and tensor infos)
// is parsed and checked once at open: every count, length, dimension and offset against the
// bytes the file has, before anything is allocated for it; tensor data is never touched until
// a tensor is read or mapped.
#pragma once

#include "gguf_layout.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>
#include <ckpt/sdk_limits.hpp>
#include <ckpt/sdk_value.hpp>

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace ckpt_gguf {

struct KeyValue {
  std::string key;   // the document's attribute name (escaped if the key is no name)
  uint64_t at = 0;   // the key's byte offset, for messages
  TypeDesc type;
  ckpt::sdk::Value value;
};

struct TensorEntry {
  std::string gguf_name;
  std::string name;  // the document's
  uint64_t at = 0;   // the tensor info's byte offset
  uint32_t ggml_type = 0;
  uint32_t dtype = 0;
  std::vector<int64_t> shape;  // ckpt order: GGUF's dimensions reversed
  uint64_t offset = 0;         // in the data section
  uint64_t nbytes = 0;
  uint64_t head_rows = 0;  // attn_q/attn_k of a llama file: rows per head, given back in Hugging Face's order
};

// ckpt's record of hashes as the file holds it (kIntegrity*Key): each tensor's digest in the
// order of the tensors ckpt holds, which the reader pairs with their names (meta/integrity/@paths).
struct IntegrityRecord {
  std::string algorithm, manifest, encoding;
  std::vector<std::string> digests;
};

struct Parsed {
  uint32_t version = kVersion;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_start = 0;
  std::vector<KeyValue> kvs;        // those listed as attributes, in file order
  std::vector<TensorEntry> tensors;  // those ckpt holds, in file order
  std::vector<std::string> unread;   // tensors of ggml types ckpt does not hold
  std::vector<std::string> types;    // gguf:types: key, type, ... where not the writer's default
  std::optional<IntegrityRecord> integrity;
};

// Parses and checks everything but the tensor bytes; fails naming the byte offset. `head` is
// the file, or (for the writer, which checks its own header) its first bytes, the header at
// least, of a file of `file_size` bytes.
Parsed parse(std::span<const std::byte> head, uint64_t file_size, const ckpt::sdk::ReadLimits& limits,
             uint64_t max_alignment = kMaxAlignment);

// The document a parsed file is, as the reader lists it (the writer hashes the same listing).
void list_document(const Parsed& parsed, const ckpt::sdk::Visitor& visitor);

class GgufReader final : public ckpt::sdk::Reader {
 public:
  GgufReader(const std::string& path, const ckpt::sdk::ReadLimits& limits, uint64_t max_alignment = kMaxAlignment);
  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;
  void read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                  std::span<std::byte> dst) override;

 private:
  const TensorEntry& entry(uint64_t id) const;
  void unpermute(const TensorEntry& t, std::byte* dst) const;
  ckpt::sdk::MappedFile file_;
  Parsed parsed_;
  std::unordered_map<uint64_t, std::vector<std::byte>> reordered_;  // map_tensor of a tensor stored in another row order
};

}  // namespace ckpt_gguf
