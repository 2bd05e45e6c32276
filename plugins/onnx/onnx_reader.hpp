// Reads an .onnx file through one read-only mapping. Opening scans the protobuf once for
// everything but tensor bytes (model_scan.hpp). A file ckpt wrote is listed exactly as the
// document it was written from (its ckpt.document metadata); any other ONNX model is listed as
// a checkpoint: its initializers as model/state and what the model says about itself under
// meta and extra/onnx. Either way the graph follows as the group onnx.graph (graph_native.hpp),
// which the host's onnx layout maps onto model/spec.
// Tensors are copied out with pread, or mapped where they lie (raw_data and external data).
#pragma once

#include "onnx_document.hpp"
#include "external_data.hpp"
#include <ckpt/sdk_io.hpp>
#include "model_scan.hpp"

#include <ckpt/sdk.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ckpt_onnx {

struct ReaderOptions {
  bool as_plain_onnx = false;  // layout=onnx: ignore ckpt's own metadata
};

class OnnxReader final : public ckpt::sdk::Reader {
 public:
  OnnxReader(const std::string& path, const ReaderOptions& options);

  void list(const ckpt::sdk::Visitor& visitor) override { doc_.tree.list(visitor); }
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;

 private:
  const Initializer& entry(uint64_t id) const;
  void bind_own_tree();
  void build_foreign_tree();
  void check_external(const std::string& note);
  // A file ckpt wrote: its graph, header and metadata must be what its document makes.
  void check_own_model(const std::string& document);
  // The external file of initializer `id` (nullptr if its data is in the model), opened and
  // bounds-checked on first use.
  const ckpt::sdk::MappedFile* external_file(uint64_t id);
  void decode_typed(const Initializer& t, std::span<std::byte> dst) const;

  std::string path_;
  ckpt::sdk::MappedFile file_;
  ScannedModel model_;
  ExternalFiles external_;
  std::map<size_t, const ckpt::sdk::MappedFile*> external_of_;  // initializer -> its opened file
  Document doc_;
  std::map<uint64_t, std::vector<std::byte>> decoded_;  // typed-field tensors handed out by map
  // A file ckpt wrote: {node, attribute} -> the path of the document's tensor kept there.
  std::map<std::pair<size_t, size_t>, std::string> bound_;
};

}  // namespace ckpt_onnx
