// ONNX external data: tensors kept in files beside the model, named by a location relative to
// the model's folder. Reading confines every location to that folder (ONNX's own loader has had
// path-traversal CVEs here): absolute paths, '..' and symlinks that lead outside are refused.
// Writing puts every tensor in one file, <model>.data, page-aligned, under a temporary name
// until finish().
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "input_file.hpp"

#include <xxhash.h>

namespace ckpt_onnx {

// The external files of one model, each opened once.
class ExternalFiles {
 public:
  explicit ExternalFiles(std::string model_path);
  // Opens `location` inside the model's folder; throws a format error naming the model, the
  // tensor and the location when it is absolute, climbs out, or resolves outside.
  const InputFile& open(const std::string& location, const std::string& tensor);

 private:
  std::string model_path_;
  std::string folder_;
  std::map<std::string, std::unique_ptr<InputFile>> files_;
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
  // `temp_path`: where to write; `final_path`: where finish() renames it to.
  ExternalWriter(std::string temp_path, std::string final_path);
  ExternalWriter(const ExternalWriter&) = delete;
  ExternalWriter& operator=(const ExternalWriter&) = delete;
  ~ExternalWriter();  // removes the temporary file unless finished
  // Appends a tensor's bytes straight from `data`; returns their offset.
  uint64_t append(std::span<const std::byte> data);
  // Writes the header, fsyncs and closes: the file is complete under its temporary name.
  ExternalHeader seal();
  // Renames it into place, as the last step before the host commits the model.
  void commit();

 private:
  void write_all(const void* p, size_t n);
  int fd_ = -1;
  std::string temp_, final_;
  uint64_t offset_ = 0;
  XXH3_state_t* hash_ = nullptr;
  bool sealed_ = false;
  bool committed_ = false;
};

// The name a file will have once the host commits it: the host writes to
// ".<name>.ckpt-tmp-<random>" and renames that to <name> (core/src/atomic_file.hpp).
std::string committed_name(const std::string& path);

}  // namespace ckpt_onnx
