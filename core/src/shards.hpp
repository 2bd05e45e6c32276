// Hugging Face's sharded checkpoints: model-00001-of-00003.safetensors, ... beside
// model.safetensors.index.json, {"metadata": {"total_size": N}, "weight_map": {name: shard}}
// (docs/formats/safetensors.md, "Sharded checkpoints"). Read as one document; written by
// convert with a shard size.
#pragma once

#include <ckpt/format_io.hpp>
#include <ckpt/io.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::detail {

namespace fs = std::filesystem;

inline constexpr const char* kShardIndex = "model.safetensors.index.json";

// What `path` names when it is a sharded checkpoint: its index (the index file itself, or a
// folder holding one), or, for a folder of one unsharded model.safetensors, that file.
std::optional<fs::path> sharded_entry(const fs::path& path);

// One reader over every shard the index names, in the order of their file names.
std::shared_ptr<FormatReader> open_sharded(const fs::path& index, const LoadOptions& options);

// The shards of `tensor_bytes` (in document order) under `max_bytes`, as huggingface_hub splits a
// state dict: a tensor goes into the current shard unless it would pass the limit; a tensor
// above the limit is a shard of its own at once. Each shard lists its tensors' indices.
std::vector<std::vector<size_t>> plan_shards(const std::vector<uint64_t>& tensor_bytes, uint64_t max_bytes);

// "model-00002-of-00005.safetensors"
std::string shard_name(size_t index, size_t count);

// The index file's text: total_size and weight_map (sorted by name, as Hugging Face writes it).
std::string shard_index_text(uint64_t total_size, const std::vector<std::pair<std::string, std::string>>& weight_map);

// "5GB", "500MB", "2GiB", "1024": bytes (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
uint64_t parse_size(const std::string& text);

}  // namespace ckpt::detail
