// Sharded checkpoints: a folder that several processes (ranks) write together, each its own
// shard file in any writable format, and that any number of processes reads back, each taking
// only the chunks it needs (docs/sharded.md). The transport between ranks is the caller's (the
// trainer uses MPI): ckpt's side is the planner, one rank's write, rank 0's commit and the
// reader, each a plain function over values a caller can send between processes as text.
//
//   step-000001000/                     the checkpoint, present only once complete
//     ckpt.sharded.json                 the index: written last, by rank 0
//     shard-00000-of-00002.msgpack      rank 0's chunks
//     shard-00001-of-00002.msgpack      rank 1's chunks
//
// The index holds the document (groups, exact attributes, tensors listed: ckpt/skeleton_text.hpp),
// and per tensor its chunks (the box of the tensor each holds, its shard, its name there, its
// hash); per shard its size. A shard holds its chunks and nothing else. A chunk is a box of the tensor, so a reader of another world size
// assembles any box it needs from the chunks overlapping it, reading only those.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/io.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <filesystem>
#include <string>
#include <vector>

namespace ckpt::sharded {

namespace fs = std::filesystem;

inline constexpr const char* kIndexName = "ckpt.sharded.json";

// A box of a tensor: offsets[i] <= index < offsets[i] + sizes[i].
struct Box {
  std::vector<int64_t> offsets;
  std::vector<int64_t> sizes;
  uint64_t elements() const;
  bool operator==(const Box&) const = default;
};

// What one rank offers to save: a box of a tensor of the global document. `replicated`: every
// rank that offers the box holds the same bytes (parameters under plain data parallelism), so
// one of them writes it.
struct Item {
  std::string path;
  DType dtype = DType::f32;
  Shape shape;  // the global tensor's
  Box box;      // the part this rank holds; the whole tensor when offsets are 0 and sizes shape
  bool replicated = false;
  uint64_t nbytes() const;
};

// Item lists as text, for a caller's transport (an MPI gather) and for the planner's input.
std::string items_text(const std::vector<Item>& items);
std::vector<Item> parse_items(const std::string& text, const std::string& source);

// Which of its items each rank writes (indices into that rank's list), as PyTorch DCP's
// planner dedups: a replicated box goes to the rank with the fewest bytes planned so far (ties
// to the lowest rank), boxes taken in order of path and offsets, largest first; every other
// item stays with its rank. The same input gives the same plan on every rank. Throws
// FormatError when ranks disagree on a tensor's dtype or shape, when boxes of one tensor
// overlap (other than replicated copies of one box), or when they leave part of it uncovered.
std::vector<std::vector<size_t>> plan_save(const std::vector<std::vector<Item>>& per_rank);

// One rank's part of a save, and what rank 0 needs of it: the chunks it wrote, with hashes,
// and its shard file's name and size. As text, for the caller's transport.
struct ShardRecord {
  size_t rank = 0;
  std::string file;  // the shard's file name inside the checkpoint folder
  uint64_t bytes = 0;
  struct Chunk {
    std::string path;  // the global tensor's
    Box box;
    std::string name;  // the chunk's tensor path inside the shard
    std::string xxh3;  // hex, of the chunk's bytes in C order
  };
  std::vector<Chunk> chunks;
};
std::string record_text(const ShardRecord& record);
ShardRecord parse_record(const std::string& text, const std::string& source);

// The two layouts a save writes, through the same staging, shard writing and commit; only the
// shards' names and contents and the index differ.
//  - ckpt: the index above (ckpt.sharded.json), shard-0000k-of-0000n.<ext> in any writable
//    format, each holding its chunks and nothing else.
//  - hugging_face: Hugging Face's (docs/formats/safetensors.md): model-0000k-of-0000n.safetensors
//    (k from 1) and model.safetensors.index.json, {"metadata": {"total_size": N}, "weight_map":
//    {name: shard}}; one shard is model.safetensors and no index. Tensors whole; the first shard
//    keeps the document's groups and attributes, the others their tensors and meta's strings,
//    and every tensor is stored in full (no aliases), since the weight_map lists each key under
//    a shard that holds it. Safetensors only. Its folders hold other files beside the weights
//    (config.json, the tokenizer): a save keeps them (hard links into the new folder).
enum class Layout { ckpt, hugging_face };

struct SaveSpec {
  fs::path target;         // the checkpoint folder
  std::string format;      // the shards' format (msgpack, safetensors, hdf5, ... any writable one)
  size_t world = 1;        // ranks
  Options format_options{};
  bool fsync = true;
  const Registry* registry = nullptr;
  Layout layout = Layout::ckpt;
};

// The folder every rank writes its shard into before rank 0 commits: ".<name>.ckpt-tmp-shards"
// beside the target, the same on every rank.
fs::path staging_folder(const fs::path& target);

// Rank 0's part of a save. Made before any rank writes (the others start after a barrier): it
// removes a staging folder left by a killed save and makes a fresh one, holding a lock on it
// while the save lasts so that `ckpt gc` and other saves leave it alone. Destroyed without
// commit(), it removes the staging folder: the previous checkpoint stays as it was. For
// Layout::hugging_face the target may be any folder but one of ckpt's layout: its other files
// go into the staging folder (hard links, else copies) before the exchange.
class Stage {
 public:
  explicit Stage(SaveSpec spec);
  ~Stage();
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  // After every rank wrote (a barrier): checks every record against the staged files and that
  // the chunks cover every tensor of `skeleton` exactly once, writes and syncs the layout's index, and
  // renames the staging folder into place (a checkpoint of that name is replaced atomically),
  // then syncs the parent folder. The target must be nothing, an empty folder or a sharded
  // checkpoint (the Stage refuses any other folder: the replacement would delete its files).
  void commit(const Document& skeleton, const std::vector<ShardRecord>& records);

 private:
  SaveSpec spec_;
  fs::path staging_;
  int lock_fd_ = -1;
  bool committed_ = false;
};

// A rank's write: `items` (its list, in the order plan_save indexed) and `planned` (its plan)
// with the bytes of each item's box in C order from `bytes(item)`. Writes its shard atomically
// into the staging folder. `skeleton` is the document (its tensors' bytes are not read): each
// item must be one of its tensors, and a document the index cannot hold (a name that is not
// UTF-8) is refused here, before anything is written. Under Layout::hugging_face the items are
// whole tensors and the shard is `skeleton` cut down to them. Returns the record rank 0 commits.
using ItemBytes = std::function<std::span<const std::byte>(const Item&)>;
ShardRecord write_shard(const SaveSpec& spec, size_t rank, const Document& skeleton, const std::vector<Item>& items,
                        const std::vector<size_t>& planned, const ItemBytes& bytes);

// The whole save in one process: `doc`'s tensors spread whole over `shards` files, balanced
// by bytes (ckpt convert --shards N; tests). Each tensor's bytes come from `tensor_bytes(path)`
// when given (asked for once, as its shard's writer reaches it), else from `doc`.
using TensorBytes = std::function<std::span<const std::byte>(const std::string& path)>;
void save_document(const Document& doc, const SaveSpec& spec, size_t shards, const TensorBytes& tensor_bytes = {});

// The same save, split as huggingface_hub splits a state dict (ckpt convert --max-shard-size):
// tensors in document order fill a shard until the next would pass `max_shard_bytes`; a tensor
// above it is a shard of its own at once. spec.world is the number of shards this makes.
void save_document_by_size(const Document& doc, const SaveSpec& spec, uint64_t max_shard_bytes,
                           const TensorBytes& tensor_bytes = {});

// Whether `path` is a sharded checkpoint folder (holds the index).
bool is_sharded(const fs::path& path);

// A reader of the whole document: tensors read from their chunks, slices (FormatReader::
// read_slice) only from the chunks they overlap, each chunk checked against its hash the first
// time any of it is read. The folder and every shard are opened at once, without following
// links, and held: a save replacing the folder meanwhile leaves the reader on what it opened.
std::shared_ptr<FormatReader> open(const fs::path& folder, const LoadOptions& options = {});


}  // namespace ckpt::sharded
