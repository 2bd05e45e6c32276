#include "onnx_writer.hpp"

#include "onnx_document.hpp"
#include "dtypes.hpp"
#include "graph_native.hpp"
#include "model_scan.hpp"
#include "own_model.hpp"
#include "onnx_layout.hpp"
#include "text.hpp"
#include "wire_writer.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <sys/stat.h>

namespace ckpt_onnx {

using ckpt::sdk::fail;
namespace fs = std::filesystem;

namespace {

// `tree` without the root's group `skip`, which holds no tensor: tensors keep their indices.
Tree without_root_member(const Tree& tree, size_t skip) {
  Tree out(true);
  // Depth first in order, so that tensors are added in the order they were recorded.
  auto copy = [&](auto& self, size_t from, size_t to) -> void {
    for (const auto& a : tree.groups[from].attributes) out.add_attribute(to, a.name, a.value);
    for (const auto& c : tree.groups[from].children) {
      if (c.is_tensor) {
        out.add_tensor(to, tree.tensors[c.index]);
      } else if (!(from == 0 && c.index == skip)) {
        self(self, c.index, out.add_group(to, tree.groups[c.index].name));
      }
    }
  };
  copy(copy, 0, 0);
  if (out.tensors.size() != tree.tensors.size())
    fail(CKPT_ERR_INVALID_ARGUMENT, std::string(kGraphGroup) + " holds tensors; the graph's group holds none");
  return out;
}

}  // namespace

OnnxWriter::OnnxWriter(const std::string& path, const WriterOptions& options)
    : path_(path),
      model_name_(committed_name(path)),
      data_name_(data_file_name(model_name_, 0)),
      options_(options),
      out_(path) {
  std::string head;
  wire::put_varint_field(head, field::kIrVersion, kIrVersion);
  wire::put_bytes_field(head, field::kProducerName, kProducerName);
  wire::put_bytes_field(head, field::kProducerVersion, kProducerVersion);
  wire::put_tag(head, field::kGraph, wire::kLength);
  graph_length_at_ = head.size();
  head += wire::padded_length(0);
  out_.write(head);
}

void OnnxWriter::begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group after finish");
  recorder_.begin_group(name, n_attributes, n_children);
}

void OnnxWriter::end_group() { recorder_.end_group(); }

void OnnxWriter::attribute(std::string_view name, const ckpt_value& value) { recorder_.attribute(name, value); }

// model/state and root tensors keep their names, so the graph and other tools see the state
// dict as it is; everything else gets the reserved prefix and its path.
std::string OnnxWriter::initializer_name(const std::string& group_path, std::string_view name,
                                         const std::string& path) {
  std::string n;
  if ((group_path == "model/state" || group_path.empty()) && valid_utf8(name) && !name.starts_with(kReservedPrefix))
    n = std::string(name);
  if (n.empty() || initializers_.count(n)) n = std::string(kReservedPrefix) + path;
  if (!valid_utf8(n)) n = std::string(kReservedPrefix) + "tensor-" + std::to_string(recorder_.tree().tensors.size());
  const std::string base = n;
  for (int k = 2; initializers_.count(n); ++k) n = base + "#" + std::to_string(k);
  initializers_.insert(n);
  return n;
}

bool OnnxWriter::goes_external(uint64_t nbytes, uint64_t inline_size, const std::string& what) {
  switch (options_.external) {
    case WriterOptions::External::always: return nbytes >= options_.external_threshold;
    case WriterOptions::External::automatic: return out_.offset() + inline_size > options_.max_inline;
    case WriterOptions::External::never:
      if (out_.offset() + inline_size > options_.max_inline)
        fail(CKPT_ERR_LIMIT, what + " would take the .onnx file past " + std::to_string(options_.max_inline) +
                                 " bytes (protobuf holds at most 2 GiB); write with external_data=auto or always");
      return false;
  }
  return false;
}

ExternalWriter& OnnxWriter::external() {
  if (!external_) {
    const std::string& location = data_name_;  // its tag is a placeholder until finish
    if (!valid_utf8(location))
      fail(CKPT_ERR_UNSUPPORTED, "'" + path_ + "': external data would be named " + quote_text(location) +
                                     ", which is not UTF-8 (ONNX locations are protobuf strings)");
    external_ = std::make_unique<ExternalWriter>(path_ + std::string(kExternalSuffix));
  }
  return *external_;
}

void OnnxWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  const std::string& group_path = recorder_.path();
  const std::string path = group_path.empty() ? std::string(info.name) : group_path + "/" + std::string(info.name);
  const std::string what = "tensor " + quote_text(path);
  const char* dtype = ckpt::sdk::dtype_name(info.dtype);
  if (!dtype) fail(CKPT_ERR_INVALID_ARGUMENT, what + " has unknown dtype " + std::to_string(info.dtype));
  if (!onnx_type_of(info.dtype)) fail(CKPT_ERR_UNSUPPORTED, what + ": ONNX has no data type for " + dtype);
  const uint64_t nbytes = ckpt::sdk::checked_nbytes(info.shape, ckpt::sdk::dtype_size(info.dtype), what);
  if (nbytes != info.nbytes || data.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, what + ": shape " + shape_text(info.shape) + " " + dtype + " needs " +
                                        std::to_string(nbytes) + " bytes, got " + std::to_string(data.size()));
  // The reader refuses a model of more initializers (model_scan.hpp): never write one.
  if (tensor_initializers_.size() >= kMaxEntries)
    fail(CKPT_ERR_LIMIT, what + ": a model holds at most " + std::to_string(kMaxEntries) +
                             " initializers (the most ckpt reads back)");
  const std::string initializer = initializer_name(group_path, info.name, path);
  recorder_.tensor(info, recorder_.tree().tensors.size());
  tensor_initializers_.push_back(initializer);

  std::string& h = head_;
  h.clear();
  for (int64_t d : info.shape) wire::put_varint_field(h, field::kDims, static_cast<uint64_t>(d));
  wire::put_varint_field(h, field::kDataType, static_cast<uint64_t>(onnx_type_of(info.dtype)));
  wire::put_bytes_field(h, field::kName, initializer);
  // Frame sizes are at most 11 bytes of tag and length on each of two levels.
  const uint64_t inline_size = 2 * 11 + h.size() + 11 + nbytes;
  uint64_t tensor_size;
  const bool external_data = goes_external(nbytes, inline_size, what);
  if (external_data) {
    const uint64_t offset = external().append(data);
    auto entry = [&](std::string_view key, const std::string& value) {
      std::string e;
      wire::put_bytes_field(e, field::kKey, key);
      wire::put_bytes_field(e, field::kValue, value);
      wire::put_bytes_field(h, field::kExternalData, e);
    };
    entry("location", data_name_);
    // Where the tag goes once the data file's hash is known: the value ends the entry. Made
    // absolute below, when the frame's length is known.
    tag_offsets_.push_back(h.size() - kDataTagLength - kExternalSuffix.size());
    entry("offset", std::to_string(offset));
    entry("length", std::to_string(nbytes));
    wire::put_varint_field(h, field::kDataLocation, 1);
    tensor_size = h.size();
  } else {
    wire::put_tag(h, field::kRawData, wire::kLength);
    wire::put_varint(h, nbytes);
    tensor_size = h.size() + nbytes;
  }
  std::string frame;
  wire::put_tag(frame, field::kInitializer, wire::kLength);
  wire::put_varint(frame, tensor_size);
  if (external_data) tag_offsets_.back() += out_.offset() + frame.size();
  out_.write(frame);
  out_.write(h);
  if (!external_data && nbytes > 0) out_.write(data.data(), nbytes);
}

std::string OnnxWriter::metadata_entries(const std::string& graph_note, const std::string& external_note) const {
  std::string out;
  for (const auto& [k, v] : own_metadata(doc_, graph_note, external_note)) {
    std::string e;
    wire::put_bytes_field(e, field::kKey, k);
    wire::put_bytes_field(e, field::kValue, v);
    wire::put_bytes_field(out, field::kMetadataProps, e);
  }
  return out;
}

void OnnxWriter::finish() {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish called twice");
  recorder_.check_done();
  doc_.initializers = std::move(tensor_initializers_);
  onnx::GraphProto graph;
  std::string graph_note;
  int64_t opset_version = kOpsetVersion;
  if (auto c = recorder_.tree().find_child(0, kGraphGroup); c && !c->is_tensor) {
    // The graph the host's layout made (graph_native.hpp); the document is the rest.
    const Tree& recorded = recorder_.tree();
    graph = graph_of(recorded, c->index);
    const Value* note = recorded.find_attribute(c->index, "note");
    if (!note || note->type != CKPT_VALUE_STRING)
      fail(CKPT_ERR_INVALID_ARGUMENT, std::string(kGraphGroup) + ": note must be a string (metadata ckpt.graph)");
    graph_note = note->s;
    // A graph kept from another model is written at the version of the default domain it was
    // made for.
    if (const Value* v = recorded.find_attribute(c->index, "opset")) {
      if (v->type != CKPT_VALUE_INT64 || v->i < 1)
        fail(CKPT_ERR_INVALID_ARGUMENT, std::string(kGraphGroup) + ": opset must be a positive integer");
      opset_version = v->i;
    }
    doc_.tree = without_root_member(recorded, c->index);
  } else {
    // No graph given (a writer driven event by event): none, as for a document without a spec.
    doc_.tree = std::move(recorder_.tree());
    graph_note = "none: the document has no model/spec";
    graph.set_name("state");
    graph.set_doc_string("No model graph (the document has no model/spec); the initializers hold the document's tensors.");
  }
  // Graph fields after the initializers: valid protobuf (fields may come in any order), and
  // the only order that lets the tensors stream.
  out_.write(graph.SerializeAsString());
  const uint64_t graph_length = out_.offset() - graph_length_at_ - wire::kPaddedLength;
  if (graph_length > kProtobufLimit)
    fail(CKPT_ERR_LIMIT, "'" + path_ + "': the graph takes " + std::to_string(graph_length) +
                             " bytes, past protobuf's 2 GiB; write with external_data=always");
  out_.patch(graph_length_at_, wire::padded_length(static_cast<uint32_t>(graph_length)));

  onnx::OperatorSetIdProto opset;
  opset.set_domain("");
  opset.set_version(opset_version);
  std::string tail;
  wire::put_bytes_field(tail, field::kOpsetImport, opset.SerializeAsString());

  std::string external_note;
  if (external_) {
    const ExternalHeader h = external_->seal();
    char hash[20];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h.hash));
    data_name_ = data_file_name(model_name_, h.hash);
    const std::string_view tag = std::string_view(data_name_).substr(model_name_.size() + 1, kDataTagLength);
    for (uint64_t at : tag_offsets_) out_.patch(at, tag);
    external_note = nlohmann::json{{"location", data_name_},
                                   {"xxh3", hash},
                                   {"bytes", h.bytes}}
                        .dump();
  }
  tail += metadata_entries(graph_note, external_note);
  if (out_.offset() + tail.size() > kProtobufLimit)
    fail(CKPT_ERR_LIMIT, "'" + path_ + "': the model would take " + std::to_string(out_.offset() + tail.size()) +
                             " bytes, past protobuf's 2 GiB; write with external_data=always");
  out_.write(tail);
  out_.close();
  if (external_) external_->commit((fs::path(path_).parent_path() / data_name_).string());
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) written_ = {st.st_dev, st.st_ino};
  finished_ = true;
}

void OnnxWriter::committed(std::string_view path) {
  const std::string model(path);
  // Another save of the same name may have committed after this one: its data files are not
  // this writer's to judge.
  struct stat st {};
  if (!finished_ || ::stat(model.c_str(), &st) != 0 || std::pair(st.st_dev, st.st_ino) != written_) return;
  remove_stale_data(model, external_ ? data_name_ : std::string());
}

}  // namespace ckpt_onnx
