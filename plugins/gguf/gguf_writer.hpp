// Streams a document into a GGUF file. The header (key-values, then every tensor's name,
// dimensions, type and offset) comes first but is complete only at finish, and ggml wants the
// data section right after it (padded to the alignment) with the tensors packed from offset 0.
// So:
//  - tensor bytes are staged in memory up to `staging_bytes` (default 16 MiB); a document that
//    fits is written at finish in one pass, exactly as ggml's writer lays it out;
//  - past that, the data section's start is fixed from a bound on the header (the key-values
//    are known, since the root's attributes come before its children; each tensor info takes
//    at most 119 bytes, names over 63 bytes being shortened) and the data streams there; at
//    finish the header fills the room before it, the rest taken by one key of ckpt's own,
//    `ckpt.padding` (a string of spaces), or, if the header has outgrown the room, whole
//    blocks are inserted before the data first;
//  - except for a document read from GGUF (gguf:types, gguf:version or general.architecture at
//    the root): GGUF -> GGUF is byte for byte at every size, so at finish the streamed data is
//    moved once to the byte where ggml's layout puts it (a second pass over the data, paid only
//    by those documents).
#pragma once

#include "gguf_layout.hpp"
#include "gguf_llama.hpp"
#include "gguf_reader.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_value.hpp>

#include <string>
#include <unordered_set>
#include <vector>

namespace ckpt_gguf {

enum class NameMapping { automatic, llama, keep };

class GgufWriter final : public ckpt::sdk::Writer {
 public:
  GgufWriter(const std::string& path, uint64_t staging_bytes, NameMapping names, LlamaOptions llama);
  ~GgufWriter() override;

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  struct Kv {
    std::string key;  // GGUF's
    ckpt::sdk::Value value;
  };
  struct Info {
    std::string name;  // the document's (a nested group's path joined with '.')
    uint32_t dtype = 0, ggml = 0;
    std::vector<int64_t> shape;
    uint64_t offset = 0, nbytes = 0;
    std::string digest;  // of the bytes as the document has them (before any row reordering)
  };

  std::string path_prefix() const;
  void write_at(uint64_t pos, const void* p, size_t n);
  void spill();
  void open_gap(uint64_t from, uint64_t by);
  void move_data(uint64_t from, uint64_t to, uint64_t n);
  uint64_t header_bound() const;
  std::vector<uint8_t> header(uint64_t padding, bool with_padding);
  void resolve_names();
  void llama_layout();
  void permute_rows(const Info& t, uint64_t heads);
  void record_hashes();

  std::string path_;
  int fd_ = -1;
  uint64_t staging_limit_;
  NameMapping names_;
  LlamaOptions llama_opts_;
  bool llama_applied_ = false;  // the Llama name map renamed tensors (resolve_names)
  std::vector<std::string> stack_;
  bool root_done_ = false, finished_ = false;
  uint64_t root_children_ = 0;

  std::vector<Kv> kvs_;
  std::unordered_set<std::string> keys_;
  std::vector<std::string> recorded_types_;  // gguf:types: key, type, ...
  uint32_t version_ = kVersion;
  bool from_gguf_ = false;  // gguf:types, gguf:version or general.architecture at the root
  uint64_t alignment_ = kDefaultAlignment;
  bool alignment_fixed_ = false;

  std::vector<Info> infos_;
  std::unordered_set<std::string> tensor_names_;
  std::vector<std::string> gguf_names_;  // resolved at finish
  uint64_t data_size_ = 0;               // the data section so far, padding included

  std::vector<std::byte> stage_;
  bool spilled_ = false;
  uint64_t data_start_ = 0;  // fixed by spill()

  // ckpt's record of hashes (ckpt.integrity.*), made at finish from the header without it.
  std::optional<IntegrityRecord> integrity_;
  bool host_records_ = false;  // the document has a group meta (the host's records)
};

}  // namespace ckpt_gguf
