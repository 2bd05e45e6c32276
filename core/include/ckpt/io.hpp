// Saving and loading documents and checkpoints. Every save is atomic: a temporary file in the
// same folder, fsync, rename over the target, fsync of the folder.
#pragma once

#include <ckpt/checkpoint.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/registry.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

struct SaveOptions {
  std::string format = "auto";  // a format name, or "auto" for the path's extension
  Options format_options{};
  bool fsync = true;  // false only for benchmarks of the page cache
  const Registry* registry = nullptr;  // nullptr: Registry::global()
};

struct LoadOptions {
  std::string format = "auto";
  Options format_options{};
  bool verify = false;  // check every tensor's hash against meta/integrity
  bool map = true;      // zero-copy views where the format maps
  const Registry* registry = nullptr;
};

// Writes `doc` exactly as given, atomically.
void write_document(const Document& doc, const fs::path& path, const SaveOptions& options = {});
// The same through a format already chosen (options.format is ignored).
void write_document(const Document& doc, const fs::path& path, const Format& format,
                    const SaveOptions& options = {});
Document read_document(const fs::path& path, const LoadOptions& options = {});
std::shared_ptr<FormatReader> open(const fs::path& path, const LoadOptions& options = {});

// Maps the checkpoint to schema v1, records hashes in meta/integrity and writes it.
void save(const Checkpoint& checkpoint, const fs::path& path, const SaveOptions& options = {});
Checkpoint load(const fs::path& path, const LoadOptions& options = {});

// Temporaries left by interrupted saves (".<name>.ckpt-tmp-<random>"). A writer holds a lock
// on its temporary until it commits, so one that nobody holds was left by a dead process
// (docs/reliability.md). Every save sweeps its own folder first; `ckpt gc` sweeps on request.
struct GcOptions {
  bool dry_run = false;
  bool recursive = false;
  // Also require this age (seconds since the last write); the only test left where the file
  // system has no locks.
  std::optional<double> min_age_seconds{};
};
struct TemporaryFile {
  enum class State { stale, live, unknown };
  fs::path path{};
  uint64_t bytes = 0;
  State state = State::unknown;
  bool removed = false;
  std::string note{};  // why it was kept
};
std::vector<TemporaryFile> remove_stale_temporaries(const fs::path& dir, const GcOptions& options = {});

}  // namespace ckpt
