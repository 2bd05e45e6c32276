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

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// The host's onnx layout keeps a foreign model's graph at extra/onnx/graph and each node
// attribute's tensor (a Constant's value) in its node's group as value.<k>
// (core/src/layouts/onnx_kept_graph.hpp); the graph it gives this writer names them by path.
bool kept_attribute_tensor(std::string_view group_path, std::string_view name) {
  constexpr std::string_view nodes = "extra/onnx/graph/nodes/", value = "value.";
  return group_path.starts_with(nodes) && all_digits(group_path.substr(nodes.size())) && name.starts_with(value) &&
         all_digits(name.substr(value.size()));
}

// What a TensorProto's fields take besides its data, at most: dims, data_type, name, and the
// frames of the tensor and of the field that holds it.
uint64_t tensor_overhead(size_t rank, size_t name) { return 11 * (rank + 6) + name; }

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
    case WriterOptions::External::automatic: return out_.offset() + deferred_inline_ + inline_size > options_.max_inline;
    case WriterOptions::External::never:
      if (out_.offset() + deferred_inline_ + inline_size > options_.max_inline)
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
  const size_t index = recorder_.tree().tensors.size();
  recorder_.tensor(info, index);
  tensor_initializers_.push_back(initializer);
  const std::span<const int64_t> shape = info.shape;
  if (kept_attribute_tensor(group_path, info.name)) {
    Deferred& d = deferred_[index];
    d.dtype = info.dtype;
    d.shape.assign(shape.begin(), shape.end());
    d.nbytes = nbytes;
    d.initializer = initializer;
    const uint64_t inline_size = tensor_overhead(shape.size(), initializer.size()) + nbytes;
    if (goes_external(nbytes, inline_size, what)) {
      d.external_offset = external().append(data);
    } else {
      d.bytes.assign(reinterpret_cast<const char*>(data.data()), data.size());
      deferred_inline_ += inline_size;
    }
    return;
  }
  const uint64_t inline_size = tensor_overhead(shape.size(), initializer.size()) + nbytes;
  std::optional<uint64_t> offset;
  if (goes_external(nbytes, inline_size, what)) offset = external().append(data);
  write_initializer(initializer, info.dtype, shape, nbytes, data, offset);
}

void OnnxWriter::write_initializer(const std::string& initializer, uint32_t dtype, std::span<const int64_t> shape,
                                   uint64_t nbytes, std::span<const std::byte> data, std::optional<uint64_t> offset) {
  std::string& h = head_;
  h.clear();
  for (int64_t d : shape) wire::put_varint_field(h, field::kDims, static_cast<uint64_t>(d));
  wire::put_varint_field(h, field::kDataType, static_cast<uint64_t>(onnx_type_of(dtype)));
  wire::put_bytes_field(h, field::kName, initializer);
  uint64_t tensor_size;
  if (offset) {
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
    entry("offset", std::to_string(*offset));
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
  if (offset) tag_offsets_.back() += out_.offset() + frame.size();
  out_.write(frame);
  out_.write(h);
  if (!offset && nbytes > 0) out_.write(data.data(), nbytes);
}

onnx::TensorProto OnnxWriter::attribute_tensor(size_t node, size_t k, const std::string& path, const std::string& where) {
  const Tree& recorded = recorder_.tree();
  const size_t slash = path.rfind('/');
  const size_t g = slash == std::string::npos ? 0 : recorded.find_path(std::string_view(path).substr(0, slash));
  const Tree::Tensor* t = g == Tree::npos ? nullptr : recorded.find_tensor(g, std::string_view(path).substr(slash + 1));
  auto it = t ? deferred_.find(static_cast<size_t>(t->id)) : deferred_.end();
  if (it == deferred_.end())
    fail(CKPT_ERR_UNSUPPORTED, std::string(kGraphGroup) + "/" + where + ": attribute " + std::to_string(k) + " names " +
                                   quote_text(path) + ", which is not a tensor of a kept graph's node (extra/onnx/graph/nodes/<i>/value.<k>)");
  Deferred& d = it->second;
  if (d.used)
    fail(CKPT_ERR_UNSUPPORTED, std::string(kGraphGroup) + "/" + where + ": tensor " + quote_text(path) +
                                   " is named by two node attributes");
  d.used = true;
  doc_.initializers[static_cast<size_t>(t->id)] = attribute_location(node, k);
  onnx::TensorProto out;
  for (int64_t x : d.shape) out.add_dims(x);
  out.set_data_type(onnx_type_of(d.dtype));
  if (d.external_offset) {
    // As an initializer of that size would be, with the data file's final name (sealed).
    auto entry = [&](const char* key, const std::string& value) {
      auto* e = out.add_external_data();
      e->set_key(key);
      e->set_value(value);
    };
    entry("location", data_name_);
    entry("offset", std::to_string(*d.external_offset));
    entry("length", std::to_string(d.nbytes));
    out.set_data_location(onnx::TensorProto::EXTERNAL);
  } else {
    out.set_raw_data(std::move(d.bytes));
  }
  return out;
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
  // Every tensor is written: the data file gets its final name now, which node attributes'
  // tensors written there name.
  std::string external_note;
  if (external_) {
    const ExternalHeader h = external_->seal();
    char hash[20];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h.hash));
    data_name_ = data_file_name(model_name_, h.hash);
    external_note = nlohmann::json{{"location", data_name_},
                                   {"xxh3", hash},
                                   {"bytes", h.bytes}}
                        .dump();
  }
  onnx::GraphProto graph;
  std::string graph_note;
  int64_t opset_version = kOpsetVersion;
  if (auto c = recorder_.tree().find_child(0, kGraphGroup); c && !c->is_tensor) {
    // The graph the host's layout made (graph_native.hpp); the document is the rest.
    const Tree& recorded = recorder_.tree();
    graph = graph_of(recorded, c->index, [&](size_t node, size_t k, const Value* v, const Tree::Tensor* t, const std::string& where) {
      if (t || !v || v->type != CKPT_VALUE_STRING)
        fail(CKPT_ERR_UNSUPPORTED, std::string(kGraphGroup) + "/" + where + ": attribute " + std::to_string(k) +
                                       " of type TENSOR must name a tensor of the document by its path");
      return attribute_tensor(node, k, v->s, where);
    });
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
    doc_.tree = std::move(recorder_.tree());  // no tensor goes to a node: deferred_ go below
    graph_note = "none: the document has no model/spec";
    graph.set_name("state");
    graph.set_doc_string("No model graph (the document has no model/spec); the initializers hold the document's tensors.");
  }
  // A kept graph's tensor that no node names is an initializer as any other tensor.
  for (auto& [index, d] : deferred_)
    if (!d.used)
      write_initializer(d.initializer, d.dtype, d.shape, d.nbytes, std::as_bytes(std::span(d.bytes)), d.external_offset);
  if (external_) {
    const std::string_view tag = std::string_view(data_name_).substr(model_name_.size() + 1, kDataTagLength);
    for (uint64_t at : tag_offsets_) out_.patch(at, tag);
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
