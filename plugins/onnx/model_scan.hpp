// One pass over an .onnx file that finds everything but tensor bytes: the model's header
// fields, its metadata, the graph without its initializers (kept as bytes for protobuf's
// generated parser, small), and for each initializer its name, type, shape and where its data
// lies (raw_data span, typed-field spans, or external data). Nothing of a tensor's data is
// copied, so opening a 1 GiB model reads a few kilobytes of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ckpt_onnx {

struct ExternalRef {
  std::string location;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool has_length = false;
};

struct Initializer {
  enum class Storage { none, raw, typed, external };
  std::string name;
  int32_t onnx_type = 0;
  uint32_t dtype = 0;  // 0: ckpt has no dtype for onnx_type
  std::vector<int64_t> dims;
  uint64_t numel = 0;
  uint64_t nbytes = 0;  // numel * itemsize (when dtype != 0)
  Storage storage = Storage::none;
  uint64_t raw_offset = 0;         // raw: in the model file
  uint32_t typed_field = 0;        // typed: the TensorProto field number
  uint64_t body_offset = 0;        // typed: the TensorProto's bytes, walked again to decode
  uint64_t body_size = 0;
  ExternalRef external;            // external
  uint64_t at = 0;                 // where its TensorProto starts, for messages
  // For messages: 'initializer "w"', or for a node attribute's tensor 'node 3 (Constant "c")
  // attribute "value"'.
  std::string what;
};

// A TensorProto held in a node attribute (AttributeProto.t: a Constant's value), found by the
// same scan as initializers, so that its data is read, checked and confined alike.
struct AttributeTensor {
  size_t node = 0;       // the node's index in the graph
  size_t attribute = 0;  // the attribute's index in the node
  Initializer tensor;
};

struct ScannedModel {
  int64_t ir_version = 0;
  std::string producer_name, producer_version, domain, doc_string;
  int64_t model_version = 0;
  std::vector<std::pair<std::string, int64_t>> opsets;  // domain, version
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string graph_rest;  // serialized GraphProto fields other than initializers
  std::vector<Initializer> initializers;
  std::vector<AttributeTensor> attribute_tensors;  // in the order of their nodes and attributes
  size_t sparse_initializers = 0;
  bool has_training_info = false;
  bool has_functions = false;
  std::vector<std::string> functions;  // each FunctionProto's bytes, for what they reference
  std::vector<std::string> training_info;  // each TrainingInfoProto's bytes, likewise

  const std::string* metadata_value(std::string_view key) const;
};

// Bounds on what a file may declare, so that the scan's memory stays a small multiple of the
// file's size: initializers (attribute tensors counted with them), opset and metadata entries
// each, and dims per tensor.
inline constexpr size_t kMaxEntries = 1'000'000;
inline constexpr size_t kMaxRank = 64;

// Throws a format error naming `source`, the byte offset and the field.
ScannedModel scan_model(std::span<const std::byte> file, const std::string& source);

}  // namespace ckpt_onnx
