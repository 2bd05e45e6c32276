// The index of a sharded checkpoint (ckpt.sharded.json) and the rules its chunks keep, shared by
// the planner, rank 0's commit and the reader, so that what a save accepts a load accepts.
#pragma once

#include <ckpt/sharded.hpp>

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace ckpt::sharded::detail {

inline constexpr const char* kIndexFormat = "ckpt-sharded";
inline constexpr int64_t kIndexVersion = 1;
// Chunks of one tensor: one per rank in the runs this is made for (a tensor split over 4,096
// ranks and then some); the bound keeps a hostile index's checks short.
inline constexpr size_t kMaxChunks = 1 << 16;
// Chunks and shards of a whole index: bounds what checking one costs.
inline constexpr size_t kMaxIndexChunks = size_t{1} << 20;
// The index is read whole; bounded before it is.
inline constexpr uint64_t kMaxIndexBytes = uint64_t{64} << 20;

struct IndexChunk {
  Box box;
  size_t shard = 0;
  std::string name;
  std::string xxh3;
};

struct IndexTensor {
  std::string path;
  DType dtype = DType::f32;
  Shape shape;
  std::vector<IndexChunk> chunks;
};

struct Index {
  std::string shard_format;
  size_t world = 0;
  std::vector<std::pair<std::string, uint64_t>> shards;  // file name, bytes
  std::vector<IndexTensor> tensors;                       // in document order
  // The document's groups, attributes and tensors (listed, no storage), in its own order: the
  // skeleton codec's text (ckpt/skeleton_text.hpp), so every attribute is exact and no shard
  // file has to hold what its format may not (a pytorch shard with the user's layout).
  Document document;
};

std::string index_text(const Index& index);
// FormatError naming `source` and the place for anything an index of ckpt's never holds:
// shard names that are not plain file names, chunks outside their tensor, overlapping or
// leaving part of it uncovered, a shard number out of range, tensors that are not the
// document's, more chunks or shards than kMaxChunks.
Index parse_index(const std::string& text, const std::string& source);

// FormatError naming `what` unless the boxes (each of the tensor's rank) lie inside `shape`,
// do not overlap and cover it; a block dtype's tensor is one whole box.
void check_cover(const Shape& shape, DType dtype, const std::vector<const Box*>& boxes, const std::string& what);

// "model/state/w" for a whole tensor; "model/state/w~128_0" for the box at offsets {128, 0}:
// a chunk's tensor path inside its shard file.
std::string chunk_name(const std::string& path, const Box& box, const Shape& shape);

// The JSON of an index or of a text ranks send each other, and its members: FormatError naming
// `where` for anything else than what is asked for (nlohmann's DOM is the JSON library here).
nlohmann::json parse_json(const std::string& text, const std::string& source, int max_nesting, const char* nested_what);
const nlohmann::json& json_member(const nlohmann::json& j, const char* key, const std::string& where);
std::string json_string(const nlohmann::json& j, const char* key, const std::string& where);
uint64_t json_count(const nlohmann::json& j, const char* key, const std::string& where);

// Box <-> JSON, for the index and the texts ranks send each other.
nlohmann::json box_json(const Box& box);
Box parse_box(const nlohmann::json& j, const std::string& where);

}  // namespace ckpt::sharded::detail
