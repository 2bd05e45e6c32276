// Reads any HDF5 file as a document: the tree from metadata only, each tensor on demand.
#pragma once

#include "h5_common.hpp"
#include "h5_guard.hpp"
#include "h5_tree.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ckpt_hdf5 {

struct ReadOptions {
  // keras=auto|raw is checked here and read by the host's Keras layout (core/src/layouts/
  // keras_legacy.cpp): raw lists a Keras weight file as stored.
  // external=refuse (the default): a dataset whose data is in other files (external storage,
  // virtual datasets) is refused, naming the object and the reference. external=inside:
  // external storage that stays inside the file's folder is read (ckpt's own reads, confined as
  // ONNX external data is). Virtual datasets are refused either way: libhdf5 follows their
  // mappings itself and crashes on one of itself. External links are recorded in meta, never
  // followed, in both.
  bool external_inside = false;
  ckpt::sdk::ReadLimits limits;

  static ReadOptions parse(ckpt::sdk::Options& options);
};

class H5Reader final : public ckpt::sdk::Reader {
 public:
  H5Reader(const std::string& path, const ReadOptions& options);
  ~H5Reader() override;

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  void read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                  std::span<std::byte> dst) override;


 private:
  void build();
  // `where` is the group's path of stored names (for messages), `doc` of document names (what
  // meta records: the writer finds members by them).
  // Fills `g` of `tree` with the group's attributes and members.
  void build_group(hid_t group, const std::string& where, const std::string& doc, bool ours, int depth,
                   std::vector<haddr_t>& ancestors, Tree& tree, size_t g);
  // A dataset as a member of `parent`: a tensor, a group of columns, a value of the group (a
  // string dataset), or named in unread.
  void add_dataset(hid_t dataset, std::string name, const std::string& where, const std::string& doc, Tree& tree, size_t parent);
  // `marked`: its dtype attribute (kDtypeAttr) made it bf16 or a float8, so that attribute is no attribute of its own.
  // Each adds what it makes of the dataset to `parent`, if anything: true when it did.
  bool add_tensor(hid_t dataset, hid_t type, std::string name, const std::string& where, bool& marked, Tree& tree,
                  size_t parent);
  bool add_compound(hid_t dataset, hid_t type, std::string name, const std::string& where, Tree& tree, size_t parent);
  bool add_string_dataset(hid_t dataset, hid_t type, const std::string& name, const std::string& where,
                          const std::string& doc, Tree& tree, size_t parent);
  // What every tensor listed from the dataset shares: its shape, checked storage and, when its
  // bytes are the tensor's as stored, where they lie. nullopt for a null dataspace (named).
  std::optional<TensorEntry> dataset_entry(hid_t dataset, hid_t type, uint32_t dtype, hid_t memtype, const std::string& where);
  void note_attribute_type(hid_t attr, const std::string& doc, const std::string& name, const Value& v,
                           const std::string& where);
  // What a conversion does not keep of a dataset's creation: a maxshape beyond its shape, a
  // fill value other than 0; named in unread.
  void note_creation(hid_t dataset, hid_t dcpl, hid_t type, const std::string& where);
  void note_dataset_attributes(hid_t dset, const std::string& where, const std::string& doc, bool kept, bool marked);
  // `ours`: the file is ckpt's; any other gets the record kAsStored (h5_layout.hpp).
  void add_records(Tree& tree, bool ours);
  // The pieces of a dataset with external storage, confined to the file's folder; refuses
  // unless options_.external_inside.
  std::vector<TensorEntry::Piece> external_pieces(hid_t dcpl, uint64_t stored, const std::string& where);
  void check_chunk_bytes(hid_t dcpl, size_t item, uint64_t elements, const std::string& where);
  void count_unwritten(hid_t dset, hid_t dcpl, H5D_layout_t layout, uint64_t stored, const std::string& where);
  struct Opened {
    Handle dataset;
    Handle memtype;
  };
  Opened open_tensor(const TensorEntry& e);

  std::string path_;
  ReadOptions options_;
  uint64_t file_size_ = 0;
  int vfd_ = -1;  // the guard's descriptor, which libhdf5 also reads: for raw tensors (TensorEntry::raw_offset)
  std::unique_ptr<FileGuard> guard_;
  Handle file_;
  std::optional<Tree> tree_;
  std::vector<TensorEntry> entries_;
  uint64_t unwritten_ = 0;  // bytes of datasets never written, read as their fill value
  // What a file other tools wrote holds that a document cannot (string and compound datasets,
  // dataset attributes, soft links): listed in meta/@unread, so that convert names the loss.
  std::vector<std::string> unread_;
  std::vector<std::string> soft_paths_, soft_targets_;  // kSoftLinkPaths, kSoftLinkTargets
  std::vector<std::string> external_paths_, external_files_, external_objects_;  // kExternalLink*
  // kStringDatasetPaths, _types, _shapes; kCompoundDatasetPaths (h5_layout.hpp).
  // kAttributeTypePaths, _Names, kAttributeTypes, kAttributeTypeShapes (h5_layout.hpp).
  std::vector<std::string> attr_type_paths_, attr_type_names_, attr_types_, attr_type_shapes_;
  std::vector<std::string> string_paths_, string_types_, string_shapes_, compound_paths_;
  // kDatasetAttributes: per dataset, its escaped path and its attributes.
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, Value>>>> dataset_attributes_;
  // What string datasets' elements cost as read, and the storage behind them (ReadLimits).
  uint64_t string_bytes_ = 0, string_stored_ = 0;
  // What string datasets' elements cost in memory as read (kStringElementCost each, beside
  // their cells or pointers), bounded by ReadLimits::document_bytes_for.
  uint64_t string_memory_ = 0;
  // What reading every column of the compound datasets costs: each column's read converts its
  // dataset's whole records.
  uint64_t column_read_bytes_ = 0;
  std::vector<int> external_fds_;
};

}  // namespace ckpt_hdf5
