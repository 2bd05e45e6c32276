#include "keras_layout.hpp"

#include <algorithm>
#include <set>
#include <string_view>

namespace ckpt_hdf5 {

namespace {

// Keras' saver splits an attribute too large for an object header into name0, name1, ...
std::optional<std::vector<std::string>> string_list(const ListNode& g, const std::string& name) {
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
  if (const Value* v = g.attribute(name)) {
    if (!take(*v)) return std::nullopt;
    return out;
  }
  size_t k = 0;
  for (; const Value* v = g.attribute(name + std::to_string(k)); ++k)
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

struct Weight {
  std::string name;
  uint64_t id;
  std::vector<int> perm;
};

}  // namespace

std::optional<ListNode> map_keras_layout(const ListNode& raw, std::vector<TensorEntry>& entries) {
  const ListNode* weights = nullptr;
  auto has_layer_names = [](const ListNode& g) {
    return g.attribute("layer_names") || g.attribute("layer_names0");
  };
  if (has_layer_names(raw)) {
    weights = &raw;
  } else if (const ListNode* mw = raw.child("model_weights"); mw && mw->is_group && has_layer_names(*mw)) {
    weights = mw;
  } else {
    return std::nullopt;
  }
  auto layers = string_list(*weights, "layer_names");
  if (!layers) return std::nullopt;

  std::vector<Weight> plan;
  std::set<std::string> used;
  std::set<uint64_t> ids;
  for (const std::string& layer : *layers) {
    const ListNode* lg = weights->child(layer);
    if (!lg || !lg->is_group) return std::nullopt;
    auto names = string_list(*lg, "weight_names");
    if (!names) return std::nullopt;

    struct Found {
      std::vector<std::string> parts;
      const ListNode* tensor;
    };
    std::vector<Found> found;
    bool all_known = true;
    for (const std::string& wn : *names) {
      std::vector<std::string> parts = split(wn, '/');
      const ListNode* n = lg;
      for (const auto& p : parts) {
        n = n->is_group ? n->child(p) : nullptr;
        if (!n) return std::nullopt;
      }
      // Each weight is one dataset of its own; anything else is not what Keras writes.
      if (n->is_group || !ids.insert(n->tensor_id).second) return std::nullopt;
      parts.back() = strip_output_index(parts.back());
      all_known = all_known && torch_name(parts.back()) != nullptr;
      found.push_back({std::move(parts), n});
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
      const TensorEntry& e = entries.at(f.tensor->tensor_id);
      std::vector<int> perm;
      if (all_known && leaf == "kernel") perm = kernel_permutation(e.shape.size());
      plan.push_back({std::move(name), f.tensor->tensor_id, std::move(perm)});
    }
  }

  ListNode doc;
  ListNode& meta = doc.children.emplace_back();
  meta.name = "meta";
  std::string producer = "Keras";
  for (const ListNode* g : {&raw, weights})
    if (const Value* v = g->attribute("keras_version"); v && v->type == CKPT_VALUE_STRING) {
      producer += " " + v->s;
      break;
    }
  meta.attributes.emplace_back("schema", Value::string("ckpt.checkpoint"));
  meta.attributes.emplace_back("schema_version", Value::integer(1));
  meta.attributes.emplace_back("producer", Value::string(producer + " (legacy HDF5 weights)"));

  ListNode& model = doc.children.emplace_back();
  model.name = "model";
  ListNode& state = model.children.emplace_back();
  state.name = "state";
  for (Weight& w : plan) {
    TensorEntry& e = entries.at(w.id);
    if (!w.perm.empty()) {
      e.source_shape = e.shape;
      for (size_t i = 0; i < w.perm.size(); ++i) e.shape[i] = e.source_shape[static_cast<size_t>(w.perm[i])];
      e.perm = std::move(w.perm);
    }
    ListNode t;
    t.name = std::move(w.name);
    t.is_group = false;
    t.tensor_id = w.id;
    state.children.push_back(std::move(t));
  }

  // Everything else of the file (versions, model and training config, optimizer weights) is
  // kept as stored under extra/keras.
  ListNode& extra = doc.children.emplace_back();
  extra.name = "extra";
  ListNode& keras = extra.children.emplace_back();
  keras.name = "keras";
  const std::set<std::string> layer_set(layers->begin(), layers->end());
  auto keep = [&](const ListNode& from, ListNode& into) {
    for (const auto& [k, v] : from.attributes)
      if (!is_layer_names(k)) into.attributes.emplace_back(k, v);
    for (const auto& c : from.children)
      if (&c != weights && !(&from == weights && layer_set.count(c.name))) into.children.push_back(c);
  };
  keep(raw, keras);
  if (weights != &raw) {
    ListNode mw;
    mw.name = weights->name;
    keep(*weights, mw);
    if (!mw.attributes.empty() || !mw.children.empty()) keras.children.push_back(std::move(mw));
  }
  return doc;
}

}  // namespace ckpt_hdf5
