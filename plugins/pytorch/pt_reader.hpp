// Reads a torch.save zip: the tree comes from ckpt's skeleton when ckpt wrote the file (and
// data.pkl, which torch reads, agrees with it), else from data.pkl through the restricted
// unpickler and torch_layout's mapping. Stored storages
// are viewed in place in the one mapping of the file.
#pragma once

#include "doc_tree.hpp"
#include <ckpt/sdk_io.hpp>
#include "py_object.hpp"
#include "unpickler.hpp"
#include "torchscript.hpp"
#include <ckpt_zip/zip_archive.hpp>

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>

#include <map>

namespace ckpt_pytorch {

// The zip container code is plugins/common/zip (shared with plugins/numpy).
using ckpt_zip::ZipEntry;
using ckpt_zip::ZipReader;

class PtReader final : public ckpt::sdk::Reader {
 public:
  PtReader(const std::string& path, const ckpt::sdk::ReadLimits& limits);

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;

 private:
  ckpt_pickle::TensorEntry& entry(uint64_t id);
  // A file ckpt wrote: the tree from its skeleton, once data.pkl (`pickled`) agrees with it.
  void read_own_file(const ZipEntry& skeleton, const ckpt_pickle::Obj* pickled, const std::string& path,
                     const ckpt::sdk::ReadLimits& limits);
  // A file ckpt wrote holds exactly the zip entries ckpt's writer makes (after read_own_file).
  void check_own_entries(const std::string& path);
  // What the schema mapping makes of `pickled`, with the array each tensor entry came from.
  ckpt_pickle::Node map_pickle(const ckpt_pickle::Obj* pickled, std::vector<ckpt_pickle::TensorEntry>& entries,
                               std::vector<const ckpt_pickle::Array*>& arrays, const ckpt::sdk::ReadLimits& limits,
                               const TorchScriptParts* script = nullptr);
  // A torch file's own layout in meta/@torch_layout, when ckpt's writer would not lay its
  // document out the same way (user_layout.hpp).
  void keep_user_layout(const ckpt_pickle::Obj* pickled, const std::vector<const ckpt_pickle::Array*>& arrays,
                        const std::string& path, const ckpt::sdk::ReadLimits& limits);
  // Sets meta/@<name> (making the group meta, first, when the document has none); the group,
  // or nullptr when a tensor at the root is named meta.
  ckpt_pickle::Node* put_in_meta(const char* name, ckpt_pickle::Value value);
  // The bytes of a small tensor, for a layout that holds it by value.
  std::vector<std::byte> small_tensor_bytes(const ckpt_pickle::Array& a);
  // The blob of archive/<folder><key>, checked to hold at least `bytes`.
  ckpt_pickle::Blob* storage(const std::string& key, uint64_t bytes, const std::string& what,
                             const std::string& folder = "data/");
  // The parts of a TorchScript archive beside data.pkl, if this is one.
  bool read_torchscript_parts(TorchScriptParts& parts, const ckpt::sdk::ReadLimits& limits);

  ckpt::sdk::MappedFile file_;
  ZipReader zip_;
  std::string prefix_;  // "archive/" or whatever folder torch named
  std::map<std::string, std::unique_ptr<ckpt_pickle::Blob>> blobs_;
  std::vector<std::unique_ptr<ckpt_pickle::Blob>> numpy_blobs_;
  std::vector<ckpt_pickle::TensorEntry> tensors_;
  ckpt_pickle::Arena arena_;
  std::vector<std::byte> pickle_bytes_, constants_bytes_;
  ckpt_pickle::Node root_;
};

using ckpt_pickle::is_legacy_torch;

}  // namespace ckpt_pytorch
