#include "keras_layout.hpp"

#include <algorithm>
#include <set>
#include <string_view>

namespace ckpt_hdf5 {

namespace {

// Keras' saver splits an attribute too large for an object header into name0, name1, ...
std::optional<std::vector<std::string>> string_list(const Tree& tree, size_t g, const std::string& name) {
  std::vector<std::string> out;
  auto take = [&](const Value& v) {
    if (v.type == CKPT_VALUE_STRING_ARRAY) {
      out.insert(out.end(), v.strings.begin(), v.strings.end());
      return true;
    }
    if (v.type == CKPT_VALUE_STRING) {
      out.push_back(v.s);
      return true;
    }
    // A layer without weights gets np.asarray([]), which h5py stores as an empty float64 array.
    return (v.type == CKPT_VALUE_FLOAT64_ARRAY && v.floats.empty()) ||
           (v.type == CKPT_VALUE_INT64_ARRAY && v.ints.empty());
  };
  if (const Value* v = tree.find_attribute(g, name)) {
    if (!take(*v)) return std::nullopt;
    return out;
  }
  size_t k = 0;
  for (; const Value* v = tree.find_attribute(g, name + std::to_string(k)); ++k)
    if (!take(*v)) return std::nullopt;
  if (k == 0) return std::nullopt;
  return out;
}

bool is_layer_names(std::string_view n) {
  if (n.substr(0, 11) != "layer_names") return false;
  n.remove_prefix(11);
  return std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t p = 0;
  for (;;) {
    size_t q = s.find(sep, p);
    out.emplace_back(s.substr(p, q == std::string_view::npos ? std::string_view::npos : q - p));
    if (q == std::string_view::npos) return out;
    p = q + 1;
  }
}

// TensorFlow names a variable "kernel:0": the suffix is the output index, not part of the name.
std::string strip_output_index(const std::string& s) {
  const size_t c = s.rfind(':');
  if (c == std::string::npos || c + 1 == s.size()) return s;
  for (size_t i = c + 1; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return s;
  return s.substr(0, c);
}

// Keras weight names and their PyTorch counterparts (Dense, ConvND, BatchNormalization,
// LayerNormalization, Embedding).
const char* torch_name(const std::string& keras) {
  static const std::pair<const char*, const char*> table[] = {
      {"kernel", "weight"},       {"bias", "bias"},
      {"gamma", "weight"},        {"beta", "bias"},
      {"moving_mean", "running_mean"}, {"moving_variance", "running_var"},
      {"embeddings", "weight"},
  };
  for (const auto& [k, t] : table)
    if (keras == k) return t;
  return nullptr;
}

// Keras keeps kernels as [in, out] and [k..., in, out]; PyTorch as [out, in] and [out, in, k...].
std::vector<int> kernel_permutation(size_t rank) {
  if (rank < 2) return {};
  std::vector<int> p = {static_cast<int>(rank - 1), static_cast<int>(rank - 2)};
  for (size_t i = 0; i + 2 < rank; ++i) p.push_back(static_cast<int>(i));
  return p;
}

// Copies member `c` of `from` into group `g` of `into`; recursion is bounded by the depth the
// reader builds.
void copy_member(const Tree& from, Tree::Child c, Tree& into, size_t g) {
  if (c.is_tensor) {
    into.add_tensor(g, from.tensors[c.index]);
    return;
  }
  const Tree::Group& src = from.groups[c.index];
  const size_t h = into.add_group(g, src.name);
  for (const Tree::Attribute& a : src.attributes) into.add_attribute(h, a.name, a.value);
  for (const Tree::Child& member : src.children) copy_member(from, member, into, h);
}

struct Weight {
  std::string name;
  uint64_t id;
  std::vector<int> perm;
};

}  // namespace

std::optional<Tree> map_keras_layout(const Tree& raw, std::vector<TensorEntry>& entries) {
  auto has_layer_names = [&](size_t g) {
    return raw.find_attribute(g, "layer_names") || raw.find_attribute(g, "layer_names0");
  };
  size_t weights = 0;  // the group of layers: the root, or model_weights
  if (!has_layer_names(0)) {
    weights = raw.find_group(0, "model_weights");
    if (weights == Tree::npos || !has_layer_names(weights)) return std::nullopt;
  }
  auto layers = string_list(raw, weights, "layer_names");
  if (!layers) return std::nullopt;

  std::vector<Weight> plan;
  std::set<std::string> used;
  std::set<uint64_t> ids;
  for (const std::string& layer : *layers) {
    const size_t lg = raw.find_group(weights, layer);
    if (lg == Tree::npos) return std::nullopt;
    auto names = string_list(raw, lg, "weight_names");
    if (!names) return std::nullopt;

    struct Found {
      std::vector<std::string> parts;
      uint64_t tensor;  // its id
    };
    std::vector<Found> found;
    bool all_known = true;
    for (const std::string& wn : *names) {
      std::vector<std::string> parts = split(wn, '/');
      std::optional<Tree::Child> n = Tree::Child{false, lg};
      for (const auto& p : parts) {
        n = n->is_tensor ? std::nullopt : raw.find_child(n->index, p);
        if (!n) return std::nullopt;
      }
      // Each weight is one dataset of its own; anything else is not what Keras writes.
      if (!n->is_tensor || !ids.insert(raw.tensors[n->index].id).second) return std::nullopt;
      parts.back() = strip_output_index(parts.back());
      all_known = all_known && torch_name(parts.back()) != nullptr;
      found.push_back({std::move(parts), raw.tensors[n->index].id});
    }
    // A layer with a weight outside the table (an LSTM's recurrent_kernel, say) is of a type
    // whose PyTorch layout is not a plain transposition: all its weights keep Keras' form.
    for (const Found& f : found) {
      std::vector<std::string> parts = f.parts;
      // TensorFlow prefixes each weight with its layer's name; nested models add their own.
      if (parts.size() > 1 && parts[0] == layer) parts.erase(parts.begin());
      const std::string leaf = parts.back();
      std::string prefix = layer;
      for (size_t i = 0; i + 1 < parts.size(); ++i) prefix += "." + parts[i];
      std::string name = prefix + "." + (all_known ? torch_name(leaf) : leaf);
      if (used.count(name)) name = prefix + "." + leaf;
      for (int k = 1; used.count(name); ++k) name = prefix + "." + leaf + "_" + std::to_string(k);
      used.insert(name);
      const TensorEntry& e = entries.at(f.tensor);
      std::vector<int> perm;
      if (all_known && leaf == "kernel") perm = kernel_permutation(e.shape.size());
      plan.push_back({std::move(name), f.tensor, std::move(perm)});
    }
  }

  Tree doc;
  const size_t meta = doc.add_group(0, "meta");
  std::string producer = "Keras";
  for (size_t g : {size_t{0}, weights})
    if (const Value* v = raw.find_attribute(g, "keras_version"); v && v->type == CKPT_VALUE_STRING) {
      producer += " " + v->s;
      break;
    }
  doc.add_attribute(meta, "schema", Value::string("ckpt.checkpoint"));
  doc.add_attribute(meta, "schema_version", Value::integer(1));
  doc.add_attribute(meta, "producer", Value::string(producer + " (legacy HDF5 weights)"));

  const size_t state = doc.add_group(doc.add_group(0, "model"), "state");
  for (Weight& w : plan) {
    TensorEntry& e = entries.at(w.id);
    if (!w.perm.empty()) {
      e.source_shape = e.shape;
      for (size_t i = 0; i < w.perm.size(); ++i) e.shape[i] = e.source_shape[static_cast<size_t>(w.perm[i])];
      e.perm = std::move(w.perm);
    }
    Tree::Tensor t;
    t.name = std::move(w.name);
    t.id = w.id;
    doc.add_tensor(state, std::move(t));
  }

  // Everything else of the file (versions, model and training config, optimizer weights) is
  // kept as stored under extra/keras.
  const size_t keras = doc.add_group(doc.add_group(0, "extra"), "keras");
  const std::set<std::string> layer_set(layers->begin(), layers->end());
  auto kept_attribute = [&](const Tree::Attribute& a) { return !is_layer_names(a.name); };
  auto kept_member = [&](size_t from, const Tree::Child& c) {
    if (!c.is_tensor && c.index == weights) return false;
    return from != weights || !layer_set.count(c.is_tensor ? raw.tensors[c.index].name : raw.groups[c.index].name);
  };
  auto keep = [&](size_t from, size_t into) {
    for (const Tree::Attribute& a : raw.groups[from].attributes)
      if (kept_attribute(a)) doc.add_attribute(into, a.name, a.value);
    for (const Tree::Child& c : raw.groups[from].children)
      if (kept_member(from, c)) copy_member(raw, c, doc, into);
  };
  keep(0, keras);
  if (weights != 0) {
    const Tree::Group& mw = raw.groups[weights];
    if (std::any_of(mw.attributes.begin(), mw.attributes.end(), kept_attribute) ||
        std::any_of(mw.children.begin(), mw.children.end(), [&](const Tree::Child& c) { return kept_member(weights, c); }))
      keep(weights, doc.add_group(keras, mw.name));
  }
  return doc;
}

}  // namespace ckpt_hdf5
