// Writes a document as HDF5: groups become groups, attributes attributes, tensors datasets.
#pragma once

#include "h5_common.hpp"

#include <ckpt/sdk_value.hpp>

#include <ckpt/sdk.hpp>

#include <string>
#include <optional>
#include <unordered_map>
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
    // Groups of meta/hdf5_dataset_attributes (kDatasetAttributes) are kept in memory, not made:
    // `capture` marks that group and its children, `captured` a child's entry in
    // dataset_attributes_ (SIZE_MAX for the group itself).
    bool capture = false;
    size_t captured = SIZE_MAX;
  };

  OpenGroup& current(const char* event);
  std::string claim_child(std::string_view name, const char* event);
  Handle dataset_creation(std::span<const int64_t> shape, size_t item, const std::string& where);
  // What finish does with the records of meta (h5_layout.hpp) once every member is written.
  void take_attribute_types();
  void retype_group_attributes();
  void make_string_datasets();
  void make_compound_datasets();
  void write_dataset_attributes();

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
  // meta/@hdf5_string_dataset_paths, _types, _shapes and @hdf5_compound_dataset_paths.
  std::optional<std::vector<std::string>> string_paths_, string_types_, string_shapes_, compound_paths_;
  // A copy of every string-valued attribute as written, by its group's path and its name: the
  // values string datasets become again (meta may come before or after them).
  std::unordered_map<std::string, ckpt::sdk::Value> string_values_;
  // meta/hdf5_dataset_attributes: per dataset, its escaped path and its attributes.
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, ckpt::sdk::Value>>>> dataset_attributes_;
  // meta/@hdf5_attribute_type_* (h5_layout.hpp), and by "path\0name" the rows they give;
  // `used` once an attribute took its row (a row no attribute takes is refused).
  std::optional<std::vector<std::string>> attr_type_paths_, attr_type_names_, attr_types_, attr_type_shapes_;
  struct AttributeType {
    std::string path, name, type, shape;
    bool used = false;
  };
  std::unordered_map<std::string, AttributeType> attribute_types_;
  // Every group's attributes as written, in order, by the group's path: made again at finish
  // when one of them has a recorded type.
  std::unordered_map<std::string, std::vector<std::pair<std::string, ckpt::sdk::Value>>> group_attributes_;
  bool root_done_ = false;
  bool finished_ = false;
};

}  // namespace ckpt_hdf5
