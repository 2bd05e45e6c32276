#include "onnx_reader.hpp"

#include "dtypes.hpp"
#include "graph_native.hpp"
#include "onnx_layout.hpp"
#include "own_model.hpp"
#include "text.hpp"

#include <ckpt/sdk_records.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/wire_format_lite.h>
#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace ckpt_onnx {

using ckpt::sdk::fail;

namespace {

// Every tensor's path in `tree`, by index.
std::vector<std::string> tensor_paths(const Tree& tree) {
  std::vector<std::string> out(tree.tensors.size());
  auto walk = [&](auto& self, size_t g, const std::string& prefix) -> void {
    for (const auto& c : tree.groups[g].children) {
      if (c.is_tensor) {
        out[c.index] = prefix + std::string(tree.tensors[c.index].name);
      } else {
        self(self, c.index, prefix + std::string(tree.groups[c.index].name) + "/");
      }
    }
  };
  walk(walk, 0, "");
  return out;
}

// Where ONNX Runtime would read bytes from other files that this reading does not: external
// data of the tensors the scan does not read (top-level initializers of a type ckpt has no dtype
// for, subgraphs, TENSORS and SPARSE_TENSOR(S) attributes, sparse initializers, local functions'
// nodes and their attributes' default values, training_info's graphs, and node attribute
// tensors of a type ckpt has no dtype for), as "<place> -> <location>".
class UnreadReferences {
 public:
  explicit UnreadReferences(const ScannedModel& m) {
    for (const AttributeTensor& a : m.attribute_tensors) read_.emplace(std::pair(a.node, a.attribute), a.tensor.dtype != 0);
    // The scan reads the top-level initializers of a ckpt dtype; the others it only names.
    for (size_t i = 0; i < m.initializers.size(); ++i) {
      const Initializer& t = m.initializers[i];
      if (!t.dtype && t.storage == Initializer::Storage::external)
        found.push_back("graph/initializer[" + std::to_string(i) + "] " + quote_text(t.name) + " (" +
                        onnx_type_name(t.onnx_type) + ") -> " + t.external.location);
    }
  }
  std::vector<std::string> found;

  void graph(const onnx::GraphProto& g, const std::string& place, bool top) {
    if (!top)
      for (int i = 0; i < g.initializer_size(); ++i) tensor(g.initializer(i), place + "initializer[" + std::to_string(i) + "]");
    for (int i = 0; i < g.sparse_initializer_size(); ++i)
      sparse(g.sparse_initializer(i), place + "sparse_initializer[" + std::to_string(i) + "]");
    for (int i = 0; i < g.node_size(); ++i) node(g.node(i), place + "node[" + std::to_string(i) + "]", top, static_cast<size_t>(i));
  }

  void node(const onnx::NodeProto& n, const std::string& place, bool top, size_t index) {
    for (int k = 0; k < n.attribute_size(); ++k) {
      const onnx::AttributeProto& a = n.attribute(k);
      // The scan reads a top-level node's TENSOR of a ckpt dtype; its file is checked and mapped.
      auto it = read_.find({index, static_cast<size_t>(k)});
      attribute(a, place + " attribute " + quote_text(a.name()), top && it != read_.end() && it->second);
    }
  }

  // One attribute: a node's, or a local function's default value (FunctionProto.attribute_proto,
  // which a node of its body takes by ref_attr_name). `t_read`: the scan reads its tensor t.
  void attribute(const onnx::AttributeProto& a, const std::string& at, bool t_read) {
    if (a.has_t() && !t_read) tensor(a.t(), at);
    for (int j = 0; j < a.tensors_size(); ++j) tensor(a.tensors(j), at + " tensors[" + std::to_string(j) + "]");
    if (a.has_sparse_tensor()) sparse(a.sparse_tensor(), at);
    for (int j = 0; j < a.sparse_tensors_size(); ++j) sparse(a.sparse_tensors(j), at + " sparse_tensors[" + std::to_string(j) + "]");
    if (a.has_g()) graph(a.g(), at + ": ", false);
    for (int j = 0; j < a.graphs_size(); ++j) graph(a.graphs(j), at + " graphs[" + std::to_string(j) + "]: ", false);
  }

 private:
  void sparse(const onnx::SparseTensorProto& s, const std::string& place) {
    tensor(s.values(), place + " values");
    tensor(s.indices(), place + " indices");
  }
  void tensor(const onnx::TensorProto& t, const std::string& place) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) return;
    std::string location;
    for (const auto& e : t.external_data())
      if (e.key() == "location") location = e.value();
    found.push_back(place + " -> " + (location.empty() ? std::string("(no location)") : location));
  }
  std::map<std::pair<size_t, size_t>, bool> read_;
};

// A local function's default attribute values (FunctionProto.attribute_proto, field 11, newer
// than the onnx.proto ckpt is built with, so its generated parser keeps them as unknown bytes).
std::vector<onnx::AttributeProto> function_attribute_defaults(const std::string& function, const std::string& path,
                                                              size_t index) {
  using google::protobuf::io::CodedInputStream;
  using google::protobuf::internal::WireFormatLite;
  constexpr int kAttributeProto = 11;
  std::vector<onnx::AttributeProto> out;
  CodedInputStream in(reinterpret_cast<const uint8_t*>(function.data()), static_cast<int>(function.size()));
  auto bad = [&] {
    fail(CKPT_ERR_FORMAT, "'" + path + "': local function " + std::to_string(index) +
                              ": attribute_proto (field 11) is not a valid AttributeProto");
  };
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (WireFormatLite::GetTagFieldNumber(tag) != kAttributeProto) {
      if (!WireFormatLite::SkipField(&in, tag)) bad();
      continue;
    }
    std::string bytes;
    uint32_t n;
    if (WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED || !in.ReadVarint32(&n) ||
        !in.ReadString(&bytes, static_cast<int>(n)) || !out.emplace_back().ParseFromString(bytes))
      bad();
  }
  return out;
}

}  // namespace

OnnxReader::OnnxReader(const std::string& path, const ReaderOptions& options)
    : path_(path), file_(path), model_(scan_model(file_.bytes(), path)), external_(path) {
  const std::string* doc = model_.metadata_value(kDocumentKey);
  if (!options.as_plain_onnx && doc) {
    doc_ = document_from_json(*doc, path_);
    bind_own_tree();
    if (const std::string* note = model_.metadata_value(kExternalKey)) check_external(*note);
    check_own_model(*doc);
  } else if (!options.as_plain_onnx && model_.producer_name == kProducerName) {
    fail(CKPT_ERR_FORMAT, "'" + path_ + "': written by ckpt but its " + std::string(kDocumentKey) +
                              " metadata is missing: the file is truncated, or another tool rewrote it "
                              "(read it with the option layout=onnx to take it as a plain ONNX model)");
  } else {
    build_foreign_tree();
  }
  // Every external location is checked (and opened) now, so a refused path fails the open.
  for (const Tree::Tensor& t : doc_.tree.tensors) external_file(t.id);
}

// Ids: the initializers' indices, then the node attributes' tensors after them.
const Initializer& OnnxReader::entry(uint64_t id) const {
  const size_t n = model_.initializers.size();
  const Initializer* t = id < n ? &model_.initializers[id]
                         : id - n < model_.attribute_tensors.size() ? &model_.attribute_tensors[id - n].tensor
                                                                    : nullptr;
  if (!t || !t->dtype) fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " in '" + path_ + "'");
  return *t;
}

const ckpt::sdk::MappedFile* OnnxReader::external_file(uint64_t id) {
  const Initializer& t = entry(id);
  if (t.storage != Initializer::Storage::external) return nullptr;
  if (auto it = external_of_.find(id); it != external_of_.end()) return it->second;
  const ckpt::sdk::MappedFile& f = external_.open(t.external.location, t.what);
  if (t.external.offset > f.size() || t.nbytes > f.size() - t.external.offset)
    fail(CKPT_ERR_FORMAT, "'" + path_ + "': " + t.what + ": external data at offset " +
                              std::to_string(t.external.offset) + " of " + std::to_string(t.nbytes) +
                              " bytes runs past the end of " + quote_text(t.external.location) + " (" +
                              std::to_string(f.size()) + " bytes)");
  external_of_.emplace(id, &f);
  return &f;
}

void OnnxReader::bind_own_tree() {
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < model_.initializers.size(); ++i)
    if (!by_name.emplace(model_.initializers[i].name, i).second)
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': two initializers are named " + quote_text(model_.initializers[i].name));
  std::map<std::pair<size_t, size_t>, size_t> by_attribute;
  for (size_t i = 0; i < model_.attribute_tensors.size(); ++i)
    by_attribute.emplace(std::pair(model_.attribute_tensors[i].node, model_.attribute_tensors[i].attribute), i);
  std::vector<bool> used(model_.initializers.size());
  const std::string changed = " (the file was changed by another tool; read it with the option layout=onnx)";
  const std::vector<std::string> paths = tensor_paths(doc_.tree);
  for (size_t k = 0; k < doc_.tree.tensors.size(); ++k) {
    Tree::Tensor& t = doc_.tree.tensors[k];
    if (auto at = attribute_location(doc_.initializers[k])) {
      // Kept in a node attribute's tensor (a Constant's value of a graph kept from another
      // model): that tensor is the document's.
      auto it = by_attribute.find(*at);
      if (it == by_attribute.end())
        fail(CKPT_ERR_FORMAT, "'" + path_ + "': the document's tensor " + quote_text(paths[k]) + " is kept in node " +
                                  std::to_string(at->first) + " attribute " + std::to_string(at->second) +
                                  ", which holds no tensor" + changed);
      const Initializer& i = model_.attribute_tensors[it->second].tensor;
      if (i.dtype != t.dtype || i.dims != t.shape)
        fail(CKPT_ERR_FORMAT, "'" + path_ + "': " + i.what + " is " + onnx_type_name(i.onnx_type) + " " +
                                  shape_text(i.dims) + " but the document says " + ckpt::sdk::dtype_name(t.dtype) + " " +
                                  shape_text(t.shape) + changed);
      if (!bound_.emplace(*at, paths[k]).second)
        fail(CKPT_ERR_FORMAT, "'" + path_ + "': two tensors of the document are kept in " + i.what);
      t.id = model_.initializers.size() + it->second;
      continue;
    }
    auto it = by_name.find(doc_.initializers[k]);
    if (it == by_name.end())
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': the document's tensor " + quote_text(t.name) + " is kept in initializer " +
                                quote_text(doc_.initializers[k]) + ", which the graph does not hold" + changed);
    const Initializer& i = model_.initializers[it->second];
    if (i.dtype != t.dtype || i.dims != t.shape)
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': initializer " + quote_text(i.name) + " is " + onnx_type_name(i.onnx_type) +
                                " " + shape_text(i.dims) + " but the document says " +
                                ckpt::sdk::dtype_name(t.dtype) + " " + shape_text(t.shape) + changed);
    if (used[it->second])
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': two tensors of the document name initializer " + quote_text(i.name));
    used[it->second] = true;
    t.id = it->second;
  }
  for (size_t i = 0; i < used.size(); ++i)
    if (!used[i])
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': initializer " + quote_text(model_.initializers[i].name) +
                                " is not in the document" + changed);
}

void OnnxReader::check_own_model(const std::string& document) {
  const std::string changed = " (the file was changed after ckpt wrote it: ONNX tools would see a model other than "
                              "the one ckpt reads; read it with the option layout=onnx to take it as a plain ONNX model)";
  auto differ = [&](const std::string& what) { fail(CKPT_ERR_FORMAT, "'" + path_ + "': " + what + changed); };
  if (model_.ir_version != kIrVersion || model_.producer_name != kProducerName || model_.producer_version != kProducerVersion ||
      !model_.domain.empty() || model_.model_version != 0 || !model_.doc_string.empty())
    differ("its header (ir_version, producer, domain, model_version or doc_string) is not what ckpt writes");
  if (model_.opsets.size() != 1 || !model_.opsets[0].first.empty())
    differ("its opset_import is not ckpt's (the default domain only)");
  // Another version than ckpt's own is listed with the graph, whose group the host's layout
  // compares with the one the document makes (a graph kept from another model keeps its
  // version).
  std::optional<int64_t> opset;
  if (model_.opsets[0].second != kOpsetVersion) opset = model_.opsets[0].second;
  if (model_.sparse_initializers || model_.has_training_info || model_.has_functions)
    differ("it holds sparse initializers, training info or functions, which ckpt never writes");
  for (const Initializer& i : model_.initializers)
    if (i.storage != Initializer::Storage::raw && i.storage != Initializer::Storage::external)
      differ("initializer " + quote_text(i.name) + " keeps its data in a typed field, which ckpt never writes");
  for (const AttributeTensor& a : model_.attribute_tensors)
    if (a.tensor.storage != Initializer::Storage::raw && a.tensor.storage != Initializer::Storage::external &&
        a.tensor.numel != 0)
      differ(a.tensor.what + " keeps its data in a typed field, which ckpt never writes");
  onnx::GraphProto graph;
  if (!graph.ParseFromString(model_.graph_rest)) differ("its graph's nodes, inputs or outputs are not valid protobuf");
  // value_info only annotates the types of intermediate values, which change no result; onnx's
  // own checker (check_model with full_check on a path) writes them into the file.
  graph.clear_value_info();
  if (document_to_json(doc_) != document) differ("metadata " + std::string(kDocumentKey) + " is not in the form ckpt writes");
  const std::string* note = model_.metadata_value(kGraphKey);
  const std::string* external = model_.metadata_value(kExternalKey);
  const auto expected = own_metadata(doc_, note ? *note : std::string(), external ? *external : std::string());
  if (expected != model_.metadata) {
    size_t i = 0;
    while (i < expected.size() && i < model_.metadata.size() && expected[i] == model_.metadata[i]) ++i;
    differ("metadata_props entry " + std::to_string(i) + " (" +
           quote_text(i < model_.metadata.size() ? model_.metadata[i].first : std::string("(missing)")) +
           ") is not what the document makes (" + quote_text(i < expected.size() ? expected[i].first : std::string("(none)")) + ")");
  }
  // The graph is listed beside the document; the host's onnx layout checks that it is the one
  // model/spec makes. Listed, it must write back as the same graph, or the check would judge
  // another graph than ONNX Runtime runs.
  bool exact = false;
  GraphExtras extras{note ? *note : std::string(), opset, nullptr};
  extras.attribute_tensors = &model_.attribute_tensors;
  extras.bound = &bound_;
  list_graph(doc_.tree, graph, extras, &exact);
  if (!exact) differ("its graph (nodes, inputs, outputs, name or doc_string) is not the one model/spec makes");
}

void OnnxReader::check_external(const std::string& note) {
  const std::string where = "'" + path_ + "': metadata " + std::string(kExternalKey);
  nlohmann::json j = ckpt::sdk::json_nul_problem(note).empty() ? nlohmann::json::parse(note, nullptr, false)
                                                                : nlohmann::json(nlohmann::json::value_t::discarded);
  if (j.is_discarded() || !j.is_object() || !j.contains("location") || !j["location"].is_string() ||
      !j.contains("xxh3") || !j["xxh3"].is_string() || !j.contains("bytes") || !j["bytes"].is_number_unsigned())
    fail(CKPT_ERR_FORMAT, where + " is not {\"location\": ..., \"xxh3\": ..., \"bytes\": ...}");
  const std::string location = j["location"].get<std::string>();
  const ckpt::sdk::MappedFile& f = external_.open(location, "metadata " + std::string(kExternalKey));
  ExternalHeader h;
  bool same = parse_header(f.bytes(), h) && h.bytes == f.size() && h.bytes == j["bytes"].get<uint64_t>();
  if (same) {
    char hash[20];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h.hash));
    same = hash == j["xxh3"].get<std::string>();
  }
  if (!same)
    fail(CKPT_ERR_INTEGRITY, "'" + f.path() + "' does not belong to '" + path_ + "': the model records data of " +
                                 j["bytes"].dump() + " bytes with XXH3 " + j["xxh3"].get<std::string>() +
                                 ", the file holds " + std::to_string(f.size()) +
                                 " bytes with another header (files of two saves mixed, or the data file "
                                 "changed since)");
}

void OnnxReader::build_foreign_tree() {
  onnx::GraphProto graph;
  if (!graph.ParseFromString(model_.graph_rest))
    fail(CKPT_ERR_FORMAT, "'" + path_ + "': the graph's nodes, inputs or outputs are not valid protobuf");
  if (std::string why = shadowed_value(graph, model_); !why.empty())
    fail(CKPT_ERR_FORMAT, "'" + path_ + "': " + why + " (ONNX Runtime would compute with another value than the one ckpt reads)");
  Tree& t = doc_.tree;
  const size_t meta = t.add_group(0, "meta");
  t.add_attribute(meta, "schema", Value::string("ckpt.checkpoint"));
  t.add_attribute(meta, "schema_version", Value::integer(1));
  std::string producer = model_.producer_name;
  if (!model_.producer_version.empty()) producer += (producer.empty() ? "" : " ") + model_.producer_version;
  t.add_attribute(meta, "producer", Value::string(producer.empty() ? "unknown ONNX producer" : producer));
  if (!model_.metadata.empty()) {
    const size_t user = t.add_group(meta, "user");
    std::set<std::string> keys;
    for (const auto& [k, v] : model_.metadata) {
      std::string key = k.empty() ? "(empty key)" : escape_name(k);
      if (!keys.insert(key).second) continue;  // protobuf's last-wins is the scan's job; keep the first here
      t.add_attribute(user, std::move(key), Value::string(v));
    }
  }
  const size_t model = t.add_group(0, "model");
  const size_t state = t.add_group(model, "state");

  const size_t extra = t.add_group(0, "extra");
  const size_t onnx = t.add_group(extra, "onnx");
  t.add_attribute(onnx, "ir_version", Value::integer(model_.ir_version));
  std::vector<std::string> opsets;
  for (const auto& [domain, version] : model_.opsets)
    opsets.push_back((domain.empty() ? std::string("ai.onnx") : domain) + " " + std::to_string(version));
  t.add_attribute(onnx, "opset_import", Value::string_array(std::move(opsets)));
  t.add_attribute(onnx, "producer_name", Value::string(model_.producer_name));
  t.add_attribute(onnx, "producer_version", Value::string(model_.producer_version));
  if (!model_.domain.empty()) t.add_attribute(onnx, "domain", Value::string(model_.domain));
  if (model_.model_version) t.add_attribute(onnx, "model_version", Value::integer(model_.model_version));
  if (!model_.doc_string.empty()) t.add_attribute(onnx, "doc_string", Value::string(model_.doc_string));
  t.add_attribute(onnx, "graph_name", Value::string(graph.name()));

  // What is not read is lost in any conversion: listed in extra/onnx/@skipped, and, one entry
  // per object, in meta/@unread, which a conversion names as losses (ckpt/sdk_records.hpp).
  std::vector<std::string> skipped, unread_objects;
  if (model_.sparse_initializers)
    skipped.push_back(std::to_string(model_.sparse_initializers) + " sparse initializers (not read)");
  for (int i = 0; i < graph.sparse_initializer_size(); ++i)
    unread_objects.push_back("graph/sparse_initializer[" + std::to_string(i) + "] " +
                             quote_text(graph.sparse_initializer(i).values().name()) + ": a sparse initializer");
  if (model_.has_training_info) skipped.push_back("training_info (not read)");
  for (size_t i = 0; i < model_.training_info.size(); ++i)
    unread_objects.push_back("training_info[" + std::to_string(i) + "]: a TrainingInfoProto (training graphs)");
  std::set<std::string> names;
  for (size_t i = 0; i < model_.initializers.size(); ++i) {
    const Initializer& init = model_.initializers[i];
    if (!init.dtype) {
      skipped.push_back(init.name + ": " + onnx_type_name(init.onnx_type) + " has no ckpt dtype");
      unread_objects.push_back("graph/initializer[" + std::to_string(i) + "] " + quote_text(init.name) + ": a tensor of " +
                               onnx_type_name(init.onnx_type) + " " + shape_text(init.dims) + ", a type ckpt has no dtype for");
      continue;
    }
    Tree::Tensor node;
    node.name = init.name.empty() ? "(unnamed " + std::to_string(i) + ")" : escape_name(init.name);
    if (!names.insert(node.name).second)
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': two initializers are named " + quote_text(init.name));
    node.dtype = init.dtype;
    node.shape = init.dims;
    node.nbytes = init.nbytes;
    node.id = i;
    doc_.add_tensor(state, std::move(node), init.name);
  }
  if (!skipped.empty()) t.add_attribute(onnx, "skipped", Value::string_array(std::move(skipped)));
  if (!unread_objects.empty()) t.add_attribute(meta, ckpt::sdk::kUnreadRecord, Value::string_array(std::move(unread_objects)));
  // What ONNX Runtime reads from other files and this reading does not, recorded so that
  // `ckpt sign` refuses the file and `ckpt verify` names each (ckpt/sdk_records.hpp).
  UnreadReferences unread(model_);
  unread.graph(graph, "graph/", true);
  for (size_t i = 0; i < model_.functions.size(); ++i) {
    onnx::FunctionProto f;
    if (!f.ParseFromString(model_.functions[i]))
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': local function " + std::to_string(i) + " is not valid protobuf");
    const std::string place = "functions[" + std::to_string(i) + "] " + quote_text(f.name());
    for (int n = 0; n < f.node_size(); ++n) unread.node(f.node(n), place + " node[" + std::to_string(n) + "]", false, 0);
    const auto defaults = function_attribute_defaults(model_.functions[i], path_, i);
    for (size_t k = 0; k < defaults.size(); ++k)
      unread.attribute(defaults[k], place + " attribute_proto[" + std::to_string(k) + "] " + quote_text(defaults[k].name()), false);
  }
  // ONNX Runtime's inference does not run training_info's graphs, but a tool that does reads
  // their external data as well.
  for (size_t i = 0; i < model_.training_info.size(); ++i) {
    onnx::TrainingInfoProto ti;
    if (!ti.ParseFromString(model_.training_info[i]))
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': training_info " + std::to_string(i) + " is not valid protobuf");
    const std::string place = "training_info[" + std::to_string(i) + "] ";
    if (ti.has_initialization()) unread.graph(ti.initialization(), place + "initialization: ", false);
    if (ti.has_algorithm()) unread.graph(ti.algorithm(), place + "algorithm: ", false);
  }
  if (!unread.found.empty()) t.add_attribute(meta, ckpt::sdk::kExternalReferencesRecord, Value::string_array(std::move(unread.found)));
  // The graph as stored; the host's onnx layout rebuilds model/spec from it where it can, and
  // otherwise keeps the group, to be written back, when @writes_back: the group writes the
  // same graph again, field for field, value_info aside (it annotates intermediate types and
  // changes no result), in a model that imports only the default domain and has no functions.
  onnx::GraphProto listed = graph;
  listed.clear_value_info();
  bool exact = false;
  std::string why_not;
  GraphExtras extras{std::nullopt, std::nullopt, &model_};
  extras.attribute_tensors = &model_.attribute_tensors;
  extras.tensor_id_base = model_.initializers.size();
  list_graph(t, listed, extras, &exact, &why_not);
  // The tensors the graph's group holds (its nodes' attribute tensors) have no initializer.
  doc_.initializers.resize(t.tensors.size());
  bool default_domain_only = !model_.has_functions;
  for (const auto& [domain, version] : model_.opsets) default_domain_only = default_domain_only && (domain.empty() || domain == "ai.onnx");
  if (exact && !default_domain_only) why_not = model_.has_functions ? "the model has local functions" : "the model imports an operator domain other than the default";
  const size_t g = t.find_child(0, kGraphGroup)->index;
  // The graph's tensors this reading takes from other files: the document holds them only if
  // the host's layout keeps the graph; otherwise it records them as external references.
  std::vector<std::string> external_tensors;
  for (const AttributeTensor& a : model_.attribute_tensors)
    if (a.tensor.dtype && a.tensor.storage == Initializer::Storage::external)
      external_tensors.push_back("graph/node[" + std::to_string(a.node) + "] attribute[" + std::to_string(a.attribute) +
                                 "] (" + a.tensor.what + ") -> " + a.tensor.external.location);
  if (!external_tensors.empty()) t.add_attribute(g, "external_tensors", Value::string_array(std::move(external_tensors)));
  t.add_attribute(g, "writes_back", Value::boolean(exact && default_domain_only));
  if (!(exact && default_domain_only)) t.add_attribute(g, "not_written_back", Value::string(why_not));
}

void OnnxReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  const Initializer& t = entry(id);
  if (dst.size() != t.nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, t.what + " has " + std::to_string(t.nbytes) +
                                        " bytes, the buffer " + std::to_string(dst.size()));
  switch (t.storage) {
    case Initializer::Storage::none: return;
    case Initializer::Storage::raw: {
      // Small tensors sit next to headers the scan has paged in already.
      constexpr uint64_t small = 64 << 10;
      if (t.nbytes <= small)
        std::memcpy(dst.data(), file_.data() + t.raw_offset, t.nbytes);
      else
        file_.read_at(t.raw_offset, dst);
      return;
    }
    case Initializer::Storage::external: external_file(id)->read_at(t.external.offset, dst); return;
    case Initializer::Storage::typed: decode_typed(t, dst); return;
  }
}

const void* OnnxReader::map_tensor(uint64_t id) {
  const Initializer& t = entry(id);
  alignas(64) static const std::byte nothing[1] = {};
  switch (t.storage) {
    case Initializer::Storage::none: return nothing;
    case Initializer::Storage::raw: return file_.data() + t.raw_offset;
    case Initializer::Storage::external: {
      const ckpt::sdk::MappedFile* f = external_file(id);
      return t.nbytes ? f->data() + t.external.offset : nothing;
    }
    case Initializer::Storage::typed: {
      // Elements kept one by one in a typed field are not the tensor's bytes; decoded once,
      // kept until the reader goes.
      auto [it, fresh] = decoded_.try_emplace(id);
      if (fresh) {
        it->second.resize(t.nbytes);
        decode_typed(t, it->second);
      }
      return t.nbytes ? it->second.data() : nothing;
    }
  }
  return nothing;
}

// Walks the TensorProto again and takes every occurrence of its typed field, packed or one
// element at a time; the scan has checked the wire format and counted the elements.
void OnnxReader::decode_typed(const Initializer& t, std::span<std::byte> dst) const {
  using google::protobuf::io::CodedInputStream;
  using google::protobuf::internal::WireFormatLite;
  // A complex element is two numbers in float_data or double_data.
  const uint64_t per = numbers_per_element(t.onnx_type), numbers = t.numel * per;
  const size_t width = ckpt::sdk::dtype_size(t.dtype) / per;
  const bool fixed32 = t.typed_field == field::kFloatData, fixed64 = t.typed_field == field::kDoubleData;
  const bool half = t.dtype == CKPT_DTYPE_F16 || t.dtype == CKPT_DTYPE_BF16;
  uint64_t k = 0;
  auto bad = [&](uint64_t at) {
    fail(CKPT_ERR_FORMAT, "'" + path_ + "': " + t.what + ": malformed element at byte " +
                              std::to_string(t.body_offset + at));
  };
  // One element: the low `width` bytes of the value, little-endian (int8 .. int64, float16 and
  // bfloat16 bits, bool).
  auto element = [&](CodedInputStream& in) {
    uint64_t v = 0;
    bool ok;
    if (fixed32) {
      uint32_t u;
      ok = in.ReadLittleEndian32(&u);
      v = u;
    } else if (fixed64) {
      ok = in.ReadLittleEndian64(&v);
    } else {
      ok = in.ReadVarint64(&v);
    }
    if (!ok || k >= numbers) bad(static_cast<uint64_t>(in.CurrentPosition()));
    // A 16-bit float's bits in an int32: ONNX Runtime refuses a value out of 0..0xFFFF ("data
    // overflow"); masking it would read a number ONNX Runtime never computes with.
    if (half && v > 0xFFFF)
      fail(CKPT_ERR_FORMAT, "'" + path_ + "': " + t.what + ": int32_data element " + std::to_string(k) + " is " +
                                std::to_string(static_cast<int64_t>(v)) + ", not the bits of a " + onnx_type_name(t.onnx_type) +
                                " (0 to 65535)");
    // A bool kept as an int32: any non-zero value is true, as numpy_helper and ONNX Runtime read it.
    if (t.dtype == CKPT_DTYPE_BOOL) v = v != 0;
    for (size_t b = 0; b < width; ++b) dst[k * width + b] = static_cast<std::byte>((v >> (8 * b)) & 0xff);
    ++k;
  };
  CodedInputStream in(reinterpret_cast<const uint8_t*>(file_.data() + t.body_offset), static_cast<int>(t.body_size));
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    const auto f = static_cast<uint32_t>(WireFormatLite::GetTagFieldNumber(tag));
    const auto type = static_cast<uint32_t>(WireFormatLite::GetTagWireType(tag));
    if (f != t.typed_field) {
      if (!WireFormatLite::SkipField(&in, tag)) bad(static_cast<uint64_t>(in.CurrentPosition()));
      continue;
    }
    if (type != wire::kLength) {
      element(in);
      continue;
    }
    uint32_t n;
    if (!in.ReadVarint32(&n)) bad(static_cast<uint64_t>(in.CurrentPosition()));
    const auto limit = in.PushLimit(static_cast<int>(n));
    while (in.BytesUntilLimit() > 0) element(in);
    in.PopLimit(limit);
  }
  if (k != numbers) fail(CKPT_ERR_INTERNAL, t.what + " decodes to fewer elements than it has");
}

}  // namespace ckpt_onnx
