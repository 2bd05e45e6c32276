// Finding, describing and loading format plugins. Formats are listed from the JSON manifest
// beside each library, so listing and choosing by extension or magic never loads code; a
// library is loaded on first use and unloaded when the last object made from it is gone.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/options.hpp>
#include <ckpt/plugin_abi.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct ckpt_plugin_descriptor;
struct ckpt_format;

namespace ckpt {

namespace fs = std::filesystem;

struct MagicBytes {
  uint64_t offset = 0;
  std::string bytes;
};

// What a format declares about itself (from its manifest, checked against its descriptor).
struct FormatInfo {
  std::string name;
  std::string long_name;
  std::vector<std::string> extensions;
  std::vector<MagicBytes> magic;
  uint32_t capabilities = 0;  // CKPT_CAP_*
  uint32_t dtypes = 0;        // CKPT_DTYPE_BIT mask

  bool can(uint32_t cap) const { return (capabilities & cap) != 0; }
  bool holds(DType d) const { return (dtypes & (1u << static_cast<unsigned>(d))) != 0; }
  bool magic_matches(std::span<const uint8_t> head) const;
};

std::vector<std::string> capability_names(uint32_t capabilities);

// One plugin library as described by its manifest.
struct PluginInfo {
  std::string name;
  std::string version;
  uint32_t abi_version = 0;
  fs::path library;
  fs::path manifest;
  std::string origin;  // "CKPT_PLUGIN_PATH", "install", "build", "explicit"
  std::vector<FormatInfo> formats;
};

struct SkippedPlugin {
  fs::path path;
  std::string reason;
};

class LoadedPlugin;
class FormatWriter;
class FormatReader;

// A usable format: loading its library on first use, keeping it alive while anything made
// from it lives.
class Format {
 public:
  Format(std::shared_ptr<const PluginInfo> plugin, size_t index);
  const FormatInfo& info() const { return plugin_->formats[index_]; }
  const PluginInfo& plugin() const { return *plugin_; }
  const std::string& name() const { return info().name; }

  int identify(std::span<const uint8_t> head, uint64_t file_size) const;
  std::unique_ptr<FormatWriter> open_writer(const fs::path& path, const Options& options) const;
  std::shared_ptr<FormatReader> open_reader(const fs::path& path, const Options& options) const;

 private:
  std::shared_ptr<LoadedPlugin> load() const;
  std::shared_ptr<const PluginInfo> plugin_;
  size_t index_;
  mutable std::shared_ptr<LoadedPlugin> loaded_;
};

class Registry {
 public:
  // Scans `dirs` in order (first one wins on duplicate names).
  explicit Registry(std::vector<std::pair<fs::path, std::string>> dirs);
  // CKPT_PLUGIN_PATH, then the install folder, then the build tree's folder.
  static std::vector<std::pair<fs::path, std::string>> default_search_path();
  // The process-wide registry over the default search path, scanned on first use.
  static Registry& global();

  const std::vector<std::shared_ptr<const PluginInfo>>& plugins() const { return plugins_; }
  const std::vector<SkippedPlugin>& skipped() const { return skipped_; }
  std::vector<Format> formats() const;
  std::vector<std::string> format_names() const;

  // Throws UsageError naming the known formats when `name` is unknown.
  Format get(std::string_view name) const;
  // Explicit name, else the extension (writing has no bytes to sniff).
  Format for_writing(const fs::path& path, std::string_view format) const;
  // Explicit name, else the extension confirmed by identify, else identify over all formats.
  Format for_reading(const fs::path& path, std::string_view format) const;
  // Throws FormatError when the file at `path`, read as `format`, is also a file of another
  // format: identified by another format with certainty, or carrying an HDF5 superblock where
  // libhdf5 searches for one, or ending in a zip directory (what torch and every zip reader
  // look at). Such a polyglot has two readings, one per tool that opens it.
  void check_one_reading(const fs::path& path, const Format& format) const;

  // Loads one library in isolation (conformance kit, `ckpt plugins --check`): reads its
  // descriptor directly; the manifest beside it is checked when present.
  static std::shared_ptr<const PluginInfo> load_library_info(const fs::path& library);

 private:
  void scan(const fs::path& dir, const std::string& origin);
  std::vector<std::shared_ptr<const PluginInfo>> plugins_;
  std::vector<SkippedPlugin> skipped_;
};

// The manifest text for a library, built from its descriptor (used by the build to write
// ckpt_<name>.ckpt-plugin.json, and by the registry to check a manifest on load).
std::string manifest_for_library(const fs::path& library);
PluginInfo parse_manifest(const fs::path& manifest_path);

}  // namespace ckpt
