// One file written through a format's writer that appears under its name only when whole: the
// writer fills an AtomicFile's temporary, and stays alive across the rename so that it hears
// of the commit (a format with files of its own beside the checkpoint, ONNX external data,
// removes an earlier save's only then).
#pragma once

#include <ckpt/format_io.hpp>
#include <ckpt/registry.hpp>

#include <filesystem>
#include <functional>

namespace ckpt::detail {

namespace fs = std::filesystem;

// `write` streams the document into the writer, finish included; `before_commit`, if given,
// may inspect the finished temporary (and throw to keep the old file in place).
void write_atomically(const fs::path& target, const Format& format, const Options& write_options,
                      bool durable, const std::function<void(FormatWriter&)>& write,
                      const std::function<void(const fs::path& temp)>& before_commit = {});

// `text` as the whole of the file at `target`, atomically (signatures, keys, shard indexes);
// `mode` sets its permissions before any of it is written.
void write_text_atomically(const fs::path& target, const std::string& text, bool durable, int mode = -1);

}  // namespace ckpt::detail
