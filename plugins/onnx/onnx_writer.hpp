// Streams a document into an .onnx file. The ModelProto is written in protobuf's wire format
// as the host's events arrive: the header fields, then the graph, whose initializers are framed
// here with each tensor's bytes written straight from the host's buffer (no ModelProto of the
// whole model is ever built), then, at finish(), the graph (the onnx.graph group the host's
// layout gives, graph_native.hpp), the opset and the metadata. The graph's length is reserved as a five-byte varint and patched at the
// end. Peak memory is the host's tensor plus a 1 MiB buffer.
#pragma once

#include "onnx_document.hpp"
#include "external_data.hpp"
#include "model_file.hpp"

#include <onnx/onnx_pb.h>

#include <ckpt/sdk.hpp>

#include <map>
#include <memory>
#include <optional>
#include <sys/types.h>
#include <utility>
#include <set>
#include <string>
#include <vector>

namespace ckpt_onnx {

struct WriterOptions {
  enum class External { automatic, always, never };
  External external = External::automatic;
  uint64_t external_threshold = 1024;  // always: tensors of at least this many bytes go out
  uint64_t max_inline = 0;             // automatic/never: the .onnx file stays below this
};

class OnnxWriter final : public ckpt::sdk::Writer {
 public:
  OnnxWriter(const std::string& path, const WriterOptions& options);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;
  void committed(std::string_view path) override;

 private:
  std::string initializer_name(const std::string& group_path, std::string_view name, const std::string& path);
  bool goes_external(uint64_t nbytes, uint64_t inline_size, const std::string& what);
  // One initializer's TensorProto: its bytes follow (`data`), or lie in the external data file
  // at `external_offset`.
  void write_initializer(const std::string& name, uint32_t dtype, std::span<const int64_t> shape, uint64_t nbytes,
                         std::span<const std::byte> data, std::optional<uint64_t> external_offset);
  // The TensorProto of a kept graph's node attribute that names the document's tensor `path`.
  onnx::TensorProto attribute_tensor(size_t node, size_t k, const std::string& path, const std::string& where);
  ExternalWriter& external();
  std::string metadata_entries(const std::string& graph_note, const std::string& external_note) const;

  std::string path_;
  std::string model_name_;  // the model's file name once the host renames it into place
  std::string data_name_;   // the external data file's name: <model>.<xxh3 of its bytes>.data
  std::vector<uint64_t> tag_offsets_;  // where each location's hash goes in the model file
  std::pair<dev_t, ino_t> written_{};  // the model file, to know it again once committed
  WriterOptions options_;
  ModelFile out_;
  ckpt::sdk::TreeRecorder recorder_;
  std::vector<std::string> tensor_initializers_;  // by index in the recorder's tree
  Document doc_;  // at finish: the recorded tree and its initializers
  std::set<std::string> initializers_;
  std::unique_ptr<ExternalWriter> external_;
  uint64_t graph_length_at_ = 0;
  bool finished_ = false;
  std::string head_;  // reused per tensor
  // Tensors of a kept graph's nodes (extra/onnx/graph/nodes/<i>/value.<k>), by index in the
  // recorder's tree: written at finish() into the node attribute that names them, as ONNX
  // keeps a Constant's value, not as initializers. Their bytes wait here, or in the external
  // data file where an initializer of that size would go.
  struct Deferred {
    uint32_t dtype = 0;
    std::vector<int64_t> shape;
    uint64_t nbytes = 0;
    std::string bytes;
    std::optional<uint64_t> external_offset;
    std::string initializer;  // the initializer it becomes when no node names it
    bool used = false;
  };
  std::map<size_t, Deferred> deferred_;
  uint64_t deferred_inline_ = 0;  // the model file's bytes they will take
};

}  // namespace ckpt_onnx
