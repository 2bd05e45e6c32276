#include "onnx_kept_graph.hpp"

#include "onnx_graph.hpp"
#include "text.hpp"

#include <ckpt/sdk_names.hpp>

namespace ckpt::layouts {

namespace {

namespace og = onnx_graph;

// The version of the default domain ckpt writes its own graphs at; the plugin lists a file's
// @opset beside the graph only when it is another.
constexpr int64_t kCkptOpset = 13;

template <class T>
const T* attribute_of(const Group& g, std::string_view name) {
  const Value* v = g.attribute(name);
  return v ? std::get_if<T>(v) : nullptr;
}

// Every initializer the group names, with its dims; a reason when the lists do not agree.
struct Listed {
  std::string name;
  Shape dims;
};
std::variant<std::vector<Listed>, std::string> initializers_of(const Group& graph) {
  const auto* names = attribute_of<std::vector<std::string>>(graph, og::kInitializers);
  const auto* ranks = attribute_of<std::vector<int64_t>>(graph, og::kInitializerRanks);
  const auto* dims = attribute_of<std::vector<int64_t>>(graph, og::kInitializerDims);
  const size_t count = names ? names->size() : 0;
  if ((ranks ? ranks->size() : 0) != count) return std::string("its initializers and initializer_ranks differ in length");
  std::vector<Listed> out;
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    const int64_t rank = (*ranks)[i];
    if (rank < 0 || !dims || static_cast<uint64_t>(rank) > dims->size() - at) return std::string("its initializer_dims is too short");
    out.push_back({(*names)[i], Shape(dims->begin() + static_cast<ptrdiff_t>(at), dims->begin() + static_cast<ptrdiff_t>(at + rank))});
    at += static_cast<size_t>(rank);
  }
  return out;
}

}  // namespace

std::string why_not_kept(const Group& graph, const Group* state) {
  const bool* writes_back = attribute_of<bool>(graph, "writes_back");
  if (!writes_back || !*writes_back) {
    const auto* why = attribute_of<std::string>(graph, "not_written_back");
    return "the model does not list as a graph ckpt writes back field for field (" +
           (why && !why->empty() ? *why
                                 : std::string("an operator domain other than the default, local functions, or a node "
                                               "attribute of a type the listing does not hold: GRAPH, SPARSE_TENSOR, ...")) +
           ")";
  }
  if (!attribute_of<int64_t>(graph, og::kOpset)) return "the model imports no version of the default operator set";
  auto listed = initializers_of(graph);
  if (auto* why = std::get_if<std::string>(&listed)) return *why;
  for (const Listed& i : std::get<0>(listed)) {
    if (i.name.empty()) return "an initializer has no name";
    if (sdk::escape_name(i.name) != i.name)
      return "initializer " + quote_text(i.name) + " is listed under another name in model/state (a name holding '/', '%' or NUL)";
    if (!state || !state->find_tensor(i.name)) return "initializer " + quote_text(i.name) + " is not read (extra/onnx/@skipped)";
  }
  return {};
}

std::optional<std::variant<Group, std::string>> kept_graph(const Document& doc) {
  const Group* kept = doc.find_group_path("extra/onnx/graph");
  if (!kept || doc.find_group_path("model/spec")) return std::nullopt;
  // The graph reads its initializers by name: each must still be in model/state, as it was.
  auto listed = initializers_of(*kept);
  if (auto* why = std::get_if<std::string>(&listed)) return "extra/onnx/graph: " + *why;
  const Group* state = doc.find_group_path("model/state");
  for (const Listed& i : std::get<0>(listed)) {
    const Tensor* t = state ? state->find_tensor(i.name) : nullptr;
    if (!t || t->shape() != i.dims)
      return "extra/onnx/graph uses initializer " + quote_text(i.name) + ", which model/state does not hold as " + shape_text(i.dims);
  }
  const auto* opset = attribute_of<int64_t>(*kept, og::kOpset);
  if (!opset) return std::string("extra/onnx/graph has no opset");
  // The members in the order the plugin lists a file ckpt wrote, which the reader compares.
  Group g;
  for (std::string_view name : {og::kName, og::kDocString})
    if (const Value* v = kept->attribute(name)) g.set(name, *v);
  g.set(og::kNote, std::string(kKeptNote));
  if (*opset != kCkptOpset) g.set(og::kOpset, *opset);
  for (std::string_view name : {og::kInputs, og::kOutputs}) {
    const Group* c = kept->find_group(name);
    g.add_group(name) = c ? *c : Group();
  }
  // A writer gets groups without tensors (ckpt/layout.hpp): a node attribute's tensor is named by
  // its path, and the writer puts the tensor it wrote there into the node.
  Group& nodes = g.add_group(og::kNodes);
  if (const Group* c = kept->find_group(og::kNodes))
    for (const Node& n : c->children()) {
      if (!n.is_group()) return "extra/onnx/graph/nodes holds a tensor " + quote_text(n.name);
      const Group& from = n.group();
      Group& to = nodes.add_group(n.name);
      for (const auto& a : from.attributes()) to.set(a.name, a.value);
      const auto* names = attribute_of<std::vector<std::string>>(from, "attribute_names");
      const auto* types = attribute_of<std::vector<std::string>>(from, "attribute_types");
      for (size_t k = 0; names && types && k < names->size() && k < types->size(); ++k) {
        if ((*types)[k] != "TENSOR") continue;
        const std::string key = og::value_key(k), path = "extra/onnx/graph/nodes/" + n.name + "/" + key;
        if (!from.find_tensor(key))
          return "extra/onnx/graph/nodes/" + n.name + " has no tensor " + key + " for its TENSOR attribute " + quote_text((*names)[k]);
        to.set(key, path);
      }
      for (const Node& t : from.children())
        if (!t.is_tensor() || t.name.rfind("value.", 0) != 0)
          return "extra/onnx/graph/nodes/" + n.name + " holds " + quote_text(t.name) + ", which is no attribute's tensor";
    }
  return g;
}

}  // namespace ckpt::layouts
