// Writes a document as HDF5: groups become groups, attributes attributes, tensors datasets.
#pragma once

#include "h5_common.hpp"

#include <ckpt/sdk.hpp>

#include <string>
#include <optional>
#include <unordered_set>
#include <vector>

namespace ckpt_hdf5 {

struct WriteOptions {
  enum class Compression { none, gzip, shuffle_gzip } compression = Compression::none;
  unsigned level = 4;  // h5py's default gzip level
  enum class Chunk { none, automatic, rows } chunk = Chunk::none;
  uint64_t rows = 0;

  static WriteOptions parse(ckpt::sdk::Options& options);
};

class H5Writer final : public ckpt::sdk::Writer {
 public:
  H5Writer(const std::string& path, const WriteOptions& options);
  ~H5Writer() override;

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  struct OpenGroup {
    Handle group;
    std::string path;
    uint64_t attributes_left;
    uint64_t children_left;
    std::unordered_set<std::string> attribute_names;
    std::unordered_set<std::string> child_names;
  };

  OpenGroup& current(const char* event);
  std::string claim_child(std::string_view name, const char* event);
  Handle dataset_creation(const ckpt::sdk::TensorInfo& info, const std::string& where);

  std::string path_;
  WriteOptions options_;
  Handle file_;
  Handle lcpl_;  // UTF-8 link names
  Handle gcpl_;  // groups that remember the order of their links and attributes
  std::vector<OpenGroup> stack_;
  // meta/@hdf5_soft_link_paths and ..._targets (h5_layout.hpp), made links at finish.
  std::optional<std::vector<std::string>> soft_paths_, soft_targets_;
  // meta/@hdf5_external_link_paths, _files, _objects, made external links at finish.
  std::optional<std::vector<std::string>> external_paths_, external_files_, external_objects_;
  bool root_done_ = false;
  bool finished_ = false;
};

}  // namespace ckpt_hdf5
