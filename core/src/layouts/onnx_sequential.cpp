// The ONNX layout of a sequential model (docs/formats/onnx.md). The onnx plugin lists a file
// as stored: its initializers, what the model says about itself (meta, extra/onnx) and its graph
// as the group onnx.graph; it writes the onnx.graph it is given. This adapter maps that graph
// onto model/spec and back:
// - a file ckpt wrote lists its own document (ckpt.document) beside the graph: the graph must
//   be the one model/spec makes, or ONNX tools would run another model than ckpt reads;
// - any other model gets model/spec rebuilt from its graph where the spec can express it, the
//   reason where not, and the initializers its layers use as constants moved to
//   extra/onnx/constants;
// - any other model whose graph the spec cannot express keeps the graph as listed, in
//   extra/onnx/graph (onnx_kept_graph.hpp), or names why it cannot in extra/onnx/@graph_lost;
// - written to onnx, a document gets the graph of its model/spec, or the graph it kept (none,
//   and why, without either).
#include "builtin.hpp"
#include "onnx_export.hpp"
#include "onnx_graph.hpp"
#include "onnx_import.hpp"
#include "onnx_kept_graph.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_records.hpp>

#include <cstring>
#include <set>

namespace ckpt::layouts {

namespace {

namespace og = onnx_graph;

bool same_group(const Group& a, const Group& b, std::string_view skip_attribute = {}) {
  auto attrs = [&](const Group& g) {
    std::vector<const Attribute*> out;
    for (const auto& x : g.attributes())
      if (x.name != skip_attribute) out.push_back(&x);
    return out;
  };
  const auto aa = attrs(a), ba = attrs(b);
  if (aa.size() != ba.size() || a.children().size() != b.children().size()) return false;
  for (size_t i = 0; i < aa.size(); ++i)
    if (aa[i]->name != ba[i]->name || !value_equal(aa[i]->value, ba[i]->value)) return false;
  for (size_t i = 0; i < a.children().size(); ++i) {
    const Node &x = a.children()[i], &y = b.children()[i];
    if (x.name != y.name || !x.is_group() || !y.is_group() || !same_group(x.group(), y.group())) return false;
  }
  return true;
}

template <class T>
const T* attribute_of(const Group& g, std::string_view name) {
  const Value* v = g.attribute(name);
  return v ? std::get_if<T>(v) : nullptr;
}

// The name the plugin lists an initializer under (its index for an unnamed one).
std::string listed_name(const std::string& name, size_t index) {
  return name.empty() ? "(unnamed " + std::to_string(index) + ")" : sdk::escape_name(name);
}

class OnnxSequential final : public LayoutAdapter {
 public:
  std::string_view name() const override { return "onnx-sequential"; }

  bool recognises(const Document& native, const LayoutSource& source) const override {
    return source.format == og::kFormat && native.find_group(og::kGroup);
  }

  SchemaDocument to_schema(Document native, const LayoutSource& source) const override {
    Group graph = std::move(*native.find_group(og::kGroup));
    native.erase(og::kGroup);
    if (graph.attribute(og::kNote)) {
      own_file(native, graph, source.file);
      return {std::move(native), {}, {}};
    }
    return other_model(std::move(native), graph, source);
  }

  std::optional<Group> to_native(const Document& schema, std::string_view format) const override {
    if (format != og::kFormat) return std::nullopt;
    if (schema.find(og::kGroup))
      throw UnsupportedError("the document has a root member '" + std::string(og::kGroup) +
                             "', the name under which the onnx format keeps its graph");
    Group native;
    native.add_group(og::kGroup) = onnx_graph_of(schema);
    return native;
  }

 private:
  // A file ckpt wrote: one reading, the graph ONNX Runtime runs being the one model/spec makes.
  static void own_file(const Document& doc, const Group& listed, const std::string& file) {
    const std::string changed =
        " (the file was changed after ckpt wrote it: ONNX tools would see a model other than the one ckpt reads; "
        "read it with the option layout=onnx to take it as a plain ONNX model)";
    const Group expected = onnx_graph_of(doc);
    const bool kept = !doc.find_group_path("model/spec") && doc.find_group_path("extra/onnx/graph");
    if (!same_group(listed, expected, og::kNote))
      throw FormatError("'" + file + "': its graph (nodes, inputs, outputs, name, doc_string or opset) is not the one " +
                        (kept ? "the document kept (extra/onnx/graph)" : "model/spec") + " makes" + changed);
    if (!value_equal(*listed.attribute(og::kNote), *expected.attribute(og::kNote)))
      throw FormatError("'" + file + "': metadata_props entry \"ckpt.graph\" is not what the document makes" + changed);
  }

  // Any other model: model/spec from the graph where the spec can express it.
  static SchemaDocument other_model(Document doc, const Group& graph, const LayoutSource& source) {
    std::vector<OnnxInitializer> inits;
    const auto* names = attribute_of<std::vector<std::string>>(graph, og::kInitializers);
    const auto* types = attribute_of<std::vector<std::string>>(graph, og::kInitializerTypes);
    const auto* ranks = attribute_of<std::vector<int64_t>>(graph, og::kInitializerRanks);
    const auto* dims = attribute_of<std::vector<int64_t>>(graph, og::kInitializerDims);
    const size_t count = names ? names->size() : 0;
    auto malformed = [&](const std::string& what) {
      throw FormatError("'" + source.file + "' at " + std::string(og::kGroup) + ": " + what);
    };
    if ((types ? types->size() : 0) != count || (ranks ? ranks->size() : 0) != count)
      malformed("initializers, initializer_types and initializer_ranks differ in length");
    size_t at = 0;
    for (size_t i = 0; i < count; ++i) {
      const int64_t rank = (*ranks)[i];
      if (rank < 0 || !dims || static_cast<uint64_t>(rank) > dims->size() - at) malformed("initializer_dims is too short");
      inits.push_back({(*names)[i], (*types)[i], {dims->begin() + static_cast<ptrdiff_t>(at), dims->begin() + static_cast<ptrdiff_t>(at + rank)}});
      at += static_cast<size_t>(rank);
    }
    std::optional<int64_t> opset;
    if (const auto* o = attribute_of<int64_t>(graph, og::kOpset)) opset = *o;
    auto int64_values = [&](size_t i) {
      std::vector<int64_t> v(static_cast<size_t>(inits[i].dims.empty() ? 1 : inits[i].dims[0]));
      source.read("model/state/" + listed_name(inits[i].name, i), std::as_writable_bytes(std::span(v)));
      return v;
    };
    auto tensor_values = [&](const std::string& path, size_t count) {
      std::vector<int64_t> v(count);
      source.read(std::string(og::kGroup) + "/" + path, std::as_writable_bytes(std::span(v)));
      return v;
    };
    const ImportedSpec imp = import_spec(graph, inits, opset, int64_values, tensor_values, source.file);

    SchemaDocument out;
    Group* model = doc.find_group("model");
    Group* extra = doc.find_group("extra");
    Group* onnx = extra ? extra->find_group("onnx") : nullptr;
    if (!model || !onnx) malformed("the listing has no model or extra/onnx group");
    if (imp.spec) {
      Group rebuilt;
      model_spec::write(rebuilt, "spec", *imp.spec);
      for (const auto& a : model->attributes()) rebuilt.set(a.name, a.value);
      for (Node& c : model->children()) {
        if (c.is_group()) rebuilt.add_group(c.name) = std::move(c.group());
        else rebuilt.add_tensor(c.name, std::move(c.tensor()));
      }
      *model = std::move(rebuilt);
    }
    std::optional<Value> skipped;
    if (const Value* s = onnx->attribute("skipped")) skipped = *s;
    onnx->erase_attribute("skipped");
    onnx->set("spec", imp.spec ? std::string("rebuilt from the graph") : "not rebuilt: " + imp.reason);
    if (imp.spec) onnx->set("value_names", imp.value_names);
    if (skipped) onnx->set("skipped", std::move(*skipped));
    // A graph the spec cannot express is kept, to be written back; or the loss is named.
    bool kept_graph = false;
    if (!imp.spec) {
      const std::string why = why_not_kept(graph, model->find_group("state"));
      if (why.empty()) {
        Group& kept = onnx->add_group(kKeptGraph);
        kept = graph;
        kept.erase_attribute("writes_back");
        kept.erase_attribute("not_written_back");
        kept.erase_attribute("external_tensors");
        kept_graph = true;
        // The node attributes' tensors (a Constant's value) go with their nodes: read, hashed
        // and signed as every tensor of the document.
        if (const Group* nodes = kept.find_group(og::kNodes))
          for (const Node& n : nodes->children())
            if (n.is_group())
              for (const Node& c : n.group().children())
                if (c.is_tensor()) {
                  const std::string at = std::string(og::kNodes) + "/" + n.name + "/" + c.name;
                  out.moved.emplace_back("extra/onnx/" + std::string(kKeptGraph) + "/" + at, std::string(og::kGroup) + "/" + at);
                }
      } else {
        onnx->set(kGraphLost, "not kept: " + why);
        // Lost in any conversion, as what the reader could not represent is: a conversion names
        // meta/@unread's entries as losses (ckpt/sdk_records.hpp).
        Group& meta = doc.group("meta");
        std::vector<std::string> unread;
        if (const auto* before = attribute_of<std::vector<std::string>>(meta, sdk::kUnreadRecord)) unread = *before;
        unread.push_back("graph: the model's graph, which the spec cannot express and the document does not keep (" + why + ")");
        meta.set(sdk::kUnreadRecord, std::move(unread));
      }
    }
    // Node attribute tensors the plugin read from other files are the document's only in a kept
    // graph; otherwise ONNX Runtime still reads them, and the document records that it does
    // (meta/@external_references, ckpt/sdk_records.hpp), so that `ckpt sign` refuses the file.
    if (const auto* external = attribute_of<std::vector<std::string>>(graph, "external_tensors"); external && !kept_graph) {
      Group& meta = doc.group("meta");
      std::vector<std::string> all;
      if (const auto* before = attribute_of<std::vector<std::string>>(meta, sdk::kExternalReferencesRecord)) all = *before;
      all.insert(all.end(), external->begin(), external->end());
      meta.set(sdk::kExternalReferencesRecord, std::move(all));
    }

    // Constants in the order of the initializers, as the listing has them.
    std::set<size_t> constants(imp.constants.begin(), imp.constants.end());
    Group* state = model->find_group("state");
    for (size_t i : constants) {
      const std::string name = listed_name(inits[i].name, i);
      const Tensor* t = state ? state->find_tensor(name) : nullptr;
      if (!t) malformed("initializer " + name + " is not listed in model/state");
      Tensor moved = *t;
      state->erase(name);
      onnx->group("constants").add_tensor(name, std::move(moved));
      out.moved.emplace_back("extra/onnx/constants/" + name, "model/state/" + name);
    }
    out.doc = std::move(doc);
    return out;
  }
};

}  // namespace

std::shared_ptr<const LayoutAdapter> onnx_sequential() { return std::make_shared<OnnxSequential>(); }

}  // namespace ckpt::layouts
