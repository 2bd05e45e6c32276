// Streams a document into a safetensors file. The header comes first in the file but is known
// only at the end (the host sends each tensor's name, shape and bytes together), so:
//  - tensor bytes are staged in memory up to `staging_bytes`; a document that fits is written
//    in one pass at finish, its header exactly as long as it needs (padded to 64 bytes);
//  - past that, the data start is fixed from an estimate of the header (4x the projection from
//    what was seen so far, plus 64 KiB, in 4 KiB blocks) and the data streams to the file from
//    there; at finish the header fills the room before it, padded with spaces, or, if it has
//    outgrown it, whole blocks are inserted before the data (see OutputFile::open_gap).
#pragma once

#include "st_document.hpp"
#include "st_output.hpp"

#include <ckpt/sdk.hpp>

#include <string>
#include <unordered_map>
#include <utility>
#include <optional>
#include <vector>

namespace ckpt_safetensors {

// meta/integrity's attributes, as the writer receives them.
struct StreamedIntegrity {
  std::string algorithm, manifest, encoding;
  std::vector<std::string> paths, digests;
  bool bad = false;  // an attribute of another name or type
};

class SafetensorsWriter final : public ckpt::sdk::Writer {
 public:
  // aliases: write a tensor meta/@tensor_aliases ties to one of equal bytes as an alias (kAliasesKey).
  SafetensorsWriter(const std::string& path, uint64_t staging_bytes, bool aliases = true);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  std::string key_of(std::string_view name) const;
  // `entries`: the header's tensor entries, each after a comma. The document entry is the
  // recorder's, as far as it has streamed.
  std::string header_json(std::string_view entries) const;
  void spill();

  OutputFile out_;
  uint64_t staging_limit_;
  // The document as the host streams it, checked as it comes (one root, valid unique names,
  // the announced counts: a header with a repeated key is a file no reader accepts); the
  // document entry is written from it. Tensors are recorded without their shapes, which the
  // header holds.
  ckpt::sdk::TreeRecorder recorder_;
  bool finished_ = false;

  std::string entries_;  // the header's tensor entries, each after a comma, in document order
  uint64_t tensors_ = 0;
  uint64_t data_size_ = 0;
  // Root string attributes, which a plain reader sees as __metadata__ entries.
  std::vector<std::pair<std::string, std::string>> root_strings_;
  std::vector<std::pair<std::string, std::string>> meta_strings_;  // copied after the root's
  // Whether the document is one a plain file holds exactly: tensors and string attributes at
  // the root, nothing else. Then the file has no document entry.
  bool plain_ = true;
  // meta/integrity as it streams by, for kIntegrityKey when the file is plain otherwise.
  std::optional<StreamedIntegrity> integrity_;
  bool in_integrity_ = false;
  std::vector<std::string> keys_;  // every tensor's key, in order
  // The kIntegrityKey entry, when integrity_ records exactly the tensors written.
  std::optional<std::string> integrity_entry() const;
  bool root_has_child_ = false;  // a member of the root was announced

  std::vector<std::byte> stage_;
  bool spilled_ = false;
  uint64_t data_start_ = 0;  // fixed by spill()

  // Tied tensors are written once. Which tensors are tied, meta/@tensor_aliases says, but
  // convert sends meta last: so a tensor whose bytes equal an earlier one's (same dtype and
  // shape; xxh3, then the bytes compared) is held back as a copy of it. At finish a copy that
  // meta ties to a tensor of its bytes becomes an alias (kAliasesKey); any other is written
  // then, its header entry put back in its place.
  struct Written {
    uint32_t dtype;
    uint32_t rank;
    size_t shape_at;  // into shapes_
    uint64_t begin, nbytes;  // in the data section
    size_t key;  // into keys_
  };
  struct Copy {
    size_t key;         // into keys_
    size_t of;          // into written_
    std::string entry;  // its header entry after the key: dtype and shape
    size_t insert_at;   // where in entries_ its entry goes, if written
  };
  std::vector<int64_t> shapes_;
  std::vector<Written> written_;
  std::unordered_map<uint64_t, std::vector<size_t>> by_content_;  // -> written_ indices
  std::vector<Copy> copies_;
  std::vector<std::string> tied_;  // meta/@tensor_aliases: path, path it shares storage with, ...
  std::string aliases_;            // kAliasesKey's JSON members, once finish resolved the copies
  bool aliases_enabled_ = true;
  void read_data(uint64_t begin, std::span<std::byte> dst);
  void append_data(std::span<const std::byte> data);
  std::string resolve_copies();
};

}  // namespace ckpt_safetensors
