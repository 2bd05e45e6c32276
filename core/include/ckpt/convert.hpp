// Converting between formats, tensor by tensor, saying first what the target cannot hold.
#pragma once

#include <ckpt/io.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

struct Loss {
  std::string path;  // the attribute, tensor or group concerned
  std::string what;  // "bf16 stored as f32", "attribute dropped", ...
};

// What writing `tree` to `target` would lose.
std::vector<Loss> plan_losses(const Document& tree, const FormatInfo& target);

// What of `tree` only ckpt would read back from `target`, where the format keeps groups and
// attributes in an entry of the plugin's own (CKPT_CAP_PRIVATE_TREE): other readers see the
// tensors and the string attributes of the root and of the top-level group meta. One entry for the root's other attributes and one
// per top-level group with attributes or empty groups in it, in document order; none for
// other formats. Nothing is lost to ckpt, so this is a notice, not a Loss that needs
// --allow-lossy.
std::vector<Loss> private_tree_contents(const Document& tree, const FormatInfo& target);

struct ConvertOptions {
  std::string from = "auto";
  std::string to = "auto";
  bool allow_lossy = false;
  Options read_options{};
  Options write_options{};
  bool fsync = true;
  const Registry* registry = nullptr;
  // Called after each tensor with bytes done and total.
  std::function<void(uint64_t done, uint64_t total)> progress{};
  // Write a Hugging Face sharded checkpoint into the folder `dst`: shards of at most this many
  // bytes (a tensor above it alone in its shard), model-0000k-of-0000n.safetensors and
  // model.safetensors.index.json; one shard is model.safetensors and no index.
  std::optional<uint64_t> max_shard_bytes{};
  // Write a sharded checkpoint of ckpt's into the folder `dst` (ckpt/sharded.hpp): this many
  // shard files of the target format, tensors whole and balanced by bytes, and the index.
  std::optional<size_t> shards{};
};

// "5GB", "500MB", "2GiB" or a number of bytes (KB/MB/GB are powers of 1000, as Hugging Face's
// max_shard_size; KiB/MiB/GiB powers of 1024).
uint64_t parse_byte_size(const std::string& text);

struct ConvertReport {
  std::string from_format;
  std::string to_format;
  std::vector<Loss> losses;
  std::vector<Loss> private_contents;  // private_tree_contents() of what was written
  // Block-quantized tensors decoded (exactly) for a target without block dtypes.
  std::vector<Loss> dequantized;
  // With the write option quantize=q8_0|q4_0|q4_k (a target holding it): each quantized
  // tensor and the largest absolute difference between its values and the source's.
  std::vector<std::pair<std::string, double>> quantization_errors;
  size_t tensors = 0;
  uint64_t bytes = 0;
  bool source_verified = false;  // hashes from meta/integrity matched while streaming
  // The source's signer when it was signed: the signature is not carried over (the hashes
  // are), so the output must be signed again.
  std::optional<std::string> dropped_signer{};
};

// Throws UnsupportedError listing the losses when some and !allow_lossy; nothing is written.
ConvertReport convert(const fs::path& src, const fs::path& dst, const ConvertOptions& options = {});

}  // namespace ckpt
