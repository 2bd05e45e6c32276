#include "commands.hpp"
#include "progress.hpp"
#include "text.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "Convert a file to another format, tensor by tensor");
  static std::string src, dst, from = "auto", to = "auto";
  static bool allow_lossy = false;
  static std::vector<std::string> read_opts, write_opts;
  static std::string max_shard;
  static size_t shards = 0;
  cmd->add_option("SRC", src, "source file, or registry:NAME@ALIAS")->required();
  cmd->add_option("DST", dst, "destination file")->required();
  cmd->add_option("--from", from, "source format (default: detect)");
  cmd->add_option("--to", to, "target format (default: from DST's extension)");
  cmd->add_flag("--allow-lossy", allow_lossy, "convert even when the target cannot hold everything (the losses are recorded in meta/conversion)");
  cmd->add_option("-r,--read-option", read_opts, "KEY=VALUE for the source format")->allow_extra_args(false);
  cmd->add_option("-w,--write-option", write_opts, "KEY=VALUE for the target format")->allow_extra_args(false);
  cmd->add_option("--max-shard-size", max_shard,
                  "write a Hugging Face sharded checkpoint into the folder DST: shards of at most this size (5GB, 500MB, "
                  "2GiB), model.safetensors.index.json");
  cmd->add_option("--shards", shards,
                  "write a sharded checkpoint of ckpt's into the folder DST: N shard files of the --to format, "
                  "tensors whole and balanced by bytes, and ckpt.sharded.json (docs/sharded.md)")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  return [] {
    ConvertOptions o;
    o.from = from;
    o.to = to;
    o.allow_lossy = allow_lossy;
    o.read_options = parse_options(read_opts);
    o.write_options = parse_options(write_opts);
    if (!max_shard.empty()) {
      o.max_shard_bytes = parse_byte_size(max_shard);
      if (o.to == "auto") o.to = "safetensors";
    }
    if (shards) {
      if (!max_shard.empty()) throw UsageError("--shards and --max-shard-size write two different sharded layouts: choose one");
      if (o.to == "auto") throw UsageError("--shards writes a folder: name the shards' format with --to (msgpack, safetensors, ...)");
      o.shards = shards;
    }
    ProgressBar bar("converting", Counting::bytes);
    o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
    ConvertReport r;
    try {
      model_registry::ResolvedInput input(src);
      r = convert(input.path(), dst, o);
    } catch (const UnsupportedError& e) {
      std::cerr << "ckpt: " << terminal_safe(e.what(), true) << "\n";
      return kBadInput;
    }
    for (const auto& l : r.losses) std::cerr << "ckpt: lossy: " << terminal_safe(l.path) << ": " << terminal_safe(l.what) << "\n";
    for (const auto& [path, error] : r.quantization_errors)
      std::cerr << "ckpt: quantized: " << terminal_safe(path) << ": max abs error " << error << "\n";
    if (!r.dequantized.empty())
      std::cerr << "ckpt: note: " << r.dequantized.size() << " block-quantized tensors decoded exactly into "
                << r.to_format << "'s dtypes (" << terminal_safe(r.dequantized.front().path) << ": "
                << terminal_safe(r.dequantized.front().what)
                << (r.dequantized.size() > 1 ? ", ..." : "") << "; listed in meta/conversion/dequantized)\n";
    if (!r.private_contents.empty()) {
      std::vector<std::string> parts;
      for (const auto& c : r.private_contents) parts.push_back(c.path + " (" + c.what + ")");
      std::cerr << "ckpt: note: other " << r.to_format << " readers see " << dst
                << "'s tensors and the string attributes of its root and meta; only ckpt reads back the rest: "
                << terminal_safe(join(parts, ", ")) << "\n";
    }
    if (r.dropped_signer)
      std::cerr << "ckpt: note: " << src << " was signed (key " << *r.dropped_signer
                << "); the signature is not carried over: renew it with `ckpt sign " << dst << " --key KEY`\n";
    std::cout << "converted " << src << " (" << r.from_format << ") -> " << dst << " (" << r.to_format << "): "
              << r.tensors << " tensors, " << r.bytes << " bytes"
              << (r.source_verified ? ", source hashes verified" : "") << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
