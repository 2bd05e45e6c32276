// ONNX external data: tensors kept in files beside the model, named by a location relative to
// the model's folder. Reading confines every location to that folder (ONNX's own loader has had
// path-traversal CVEs here): absolute paths, '..' and symlinks that lead outside are refused.
// Writing puts every tensor in one file, page-aligned, under a temporary name until finish(),
// which renames it to a name taken from its contents, <model>.<xxh3>.data: it never replaces
// the data file the committed model uses by another, so a crash at any moment leaves that pair
// whole. Once the host has committed the new model, the data files of earlier saves go
// (remove_stale_data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include <ckpt/sdk_io.hpp>

#include <xxhash.h>

namespace ckpt_onnx {

// The external files of one model, each opened once.
class ExternalFiles {
 public:
  explicit ExternalFiles(std::string model_path);
  // Opens `location` inside the model's folder; throws a format error naming the model, the
  // tensor (`what`: 'initializer "w"', 'node 3 (Constant) attribute "value"') and the location
  // when it is absolute, climbs out, or resolves outside.
  const ckpt::sdk::MappedFile& open(const std::string& location, const std::string& what);

 private:
  std::string model_path_;
  std::string folder_;
  std::map<std::string, std::unique_ptr<ckpt::sdk::MappedFile>> files_;
};

// The header at the start of a data file ckpt writes: which save it belongs to.
struct ExternalHeader {
  uint64_t hash = 0;   // XXH3-64 of every byte after the header page
  uint64_t bytes = 0;  // the file's size
};
std::string header_bytes(const ExternalHeader& h);
// nullopt-like: false when `head` is not a ckpt data file header.
bool parse_header(std::span<const std::byte> head, ExternalHeader& out);

// Writes <model>.data: a header page, then each tensor at the next page boundary.
class ExternalWriter {
 public:
  // `temp_path`: where to write until commit().
  explicit ExternalWriter(std::string temp_path);
  ExternalWriter(const ExternalWriter&) = delete;
  ExternalWriter& operator=(const ExternalWriter&) = delete;
  ~ExternalWriter();  // removes the temporary file unless finished
  // Appends a tensor's bytes straight from `data`; returns their offset.
  uint64_t append(std::span<const std::byte> data);
  // Writes the header, fsyncs and closes: the file is complete under its temporary name.
  ExternalHeader seal();
  // Renames it to `final_path` and syncs the folder, as the last step before the host commits
  // the model.
  void commit(const std::string& final_path);

 private:
  void write_all(const void* p, size_t n);
  int fd_ = -1;
  std::string temp_;
  uint64_t offset_ = 0;
  XXH3_state_t* hash_ = nullptr;
  bool sealed_ = false;
  bool committed_ = false;
};

// The name a file will have once the host commits it: the host writes to
// ".<name>.ckpt-tmp-<random>" and renames that to <name> (core/src/atomic_file.hpp).
std::string committed_name(const std::string& path);

// The data file's name for the model `model_name` whose data hashes to `hash` (XXH3-64):
// "<model>.<16 hex digits>.data".
std::string data_file_name(const std::string& model_name, uint64_t hash);
inline constexpr size_t kDataTagLength = 16;

// Removes, beside the committed model `model`, the data files ckpt wrote for earlier saves of
// it ("<model>.data" and "<model>.<tag>.data" that start with ckpt's data header), except
// `keep` (a file name; empty to keep none). Best effort: a file that cannot be removed stays.
void remove_stale_data(const std::string& model, const std::string& keep);

}  // namespace ckpt_onnx
