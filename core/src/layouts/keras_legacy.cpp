// Keras' legacy HDF5 weight files (model.save("x.h5") and save_weights("x.h5")) seen as a
// checkpoint: a state dict with PyTorch names and layouts (docs/formats/hdf5.md, "Keras weight
// files"). The hdf5 plugin lists the file as stored, with what it could not represent in
// meta's records; this layout maps the listing when it has Keras' layout and every weight it
// names is a dataset, and leaves it as listed otherwise (or with the read option keras=raw).
// Kernels are transposed lazily by the host (ckpt/layout.hpp, Transposition).
#include "builtin.hpp"

#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_records.hpp>

#include <algorithm>
#include <functional>
#include <set>
#include <string_view>

namespace ckpt::layouts {

namespace {

// The plugin's records in meta (plugins/hdf5/h5_layout.hpp): what is not a member of the file.
constexpr std::string_view kRecords[] = {
    sdk::kUnreadRecord, sdk::kExternalReferencesRecord, "hdf5_soft_link_paths", "hdf5_soft_link_targets", "hdf5_external_link_paths",
    "hdf5_external_link_files", "hdf5_external_link_objects", "hdf5_string_dataset_paths",
    "hdf5_string_dataset_types", "hdf5_string_dataset_shapes", "hdf5_compound_dataset_paths", "hdf5_as_stored",
    // Attributes' HDF5 types: the mapping keeps attributes as values (it moves them), not their types.
    "hdf5_attribute_type_paths", "hdf5_attribute_type_names", "hdf5_attribute_types", "hdf5_attribute_type_shapes"};
constexpr std::string_view kDatasetAttributes = "hdf5_dataset_attributes";
// The plugin's mark of a file ckpt did not write: "file" when meta is the file's own group,
// "records" when the plugin made it for its records.
constexpr std::string_view kAsStored = "hdf5_as_stored";

// Keras' saver splits an attribute too large for an object header into name0, name1, ...
std::optional<std::vector<std::string>> string_list(const Group& g, const std::string& name) {
  std::vector<std::string> out;
  auto take = [&](const Value& v) {
    if (const auto* a = std::get_if<std::vector<std::string>>(&v)) {
      out.insert(out.end(), a->begin(), a->end());
      return true;
    }
    if (const auto* s = std::get_if<std::string>(&v)) {
      out.push_back(*s);
      return true;
    }
    // A layer without weights gets np.asarray([]), which h5py stores as an empty float64 array.
    const auto* f = std::get_if<std::vector<double>>(&v);
    const auto* i = std::get_if<std::vector<int64_t>>(&v);
    return (f && f->empty()) || (i && i->empty());
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
  std::string name;       // in model/state
  std::string listed;     // its path in the listing
  const Tensor* tensor;
  std::vector<int> perm;
};

class KerasLegacy final : public LayoutAdapter {
 public:
  std::string_view name() const override { return "keras-legacy-h5"; }

  // Every file the hdf5 plugin lists as stored: the mark goes, and a Keras weight file becomes
  // a checkpoint unless read with keras=raw.
  bool recognises(const Document& native, const LayoutSource& source) const override {
    const Group* meta = native.find_group("meta");
    return source.format == "hdf5" && meta && meta->attribute(kAsStored);
  }

  SchemaDocument to_schema(Document native, const LayoutSource& source) const override {
    bool raw = false;
    for (const auto& [k, v] : source.options) raw = raw || (k == "keras" && v == "raw");
    if (!raw)
      if (auto p = plan(native)) return map(native, *p);
    Group& meta = *native.find_group("meta");
    const Value mark = *meta.attribute(kAsStored);
    meta.erase_attribute(kAsStored);
    if (meta.empty() && value_equal(mark, Value(std::string("records")))) native.erase("meta");
    return {std::move(native), {}, {}};
  }

  std::optional<Group> to_native(const Document&, std::string_view) const override { return std::nullopt; }

 private:
  struct Plan {
    const Group* weights;  // the root, or model_weights
    std::string weights_name;  // "" for the root
    std::vector<std::string> layers;
    std::vector<Weight> weights_found;
  };

  // The mapping, when the listing has Keras' layout and every weight it names is a dataset
  // used once.
  static std::optional<Plan> plan(const Document& raw) {
    auto has_layer_names = [](const Group& g) { return g.attribute("layer_names") || g.attribute("layer_names0"); };
    Plan p;
    p.weights = &raw;
    if (!has_layer_names(raw)) {
      p.weights = raw.find_group("model_weights");
      if (!p.weights || !has_layer_names(*p.weights)) return std::nullopt;
      p.weights_name = "model_weights";
    }
    auto layers = string_list(*p.weights, "layer_names");
    if (!layers) return std::nullopt;
    p.layers = *layers;
    std::set<std::string> used;
    std::set<const Tensor*> seen;
    for (const std::string& layer : p.layers) {
      const Group* lg = p.weights->find_group(layer);
      if (!lg) return std::nullopt;
      auto names = string_list(*lg, "weight_names");
      if (!names) return std::nullopt;
      struct Found {
        std::vector<std::string> parts;
        std::string listed;
        const Tensor* tensor;
      };
      std::vector<Found> found;
      bool all_known = true;
      const std::string layer_path = (p.weights_name.empty() ? "" : p.weights_name + "/") + layer;
      for (const std::string& wn : *names) {
        std::vector<std::string> parts = split(wn, '/');
        const Group* g = lg;
        const Tensor* t = nullptr;
        for (size_t i = 0; i < parts.size(); ++i) {
          const Node* n = g ? g->find(parts[i]) : nullptr;
          if (!n) return std::nullopt;
          if (n->is_group()) {
            g = &n->group();
          } else {
            if (i + 1 != parts.size()) return std::nullopt;
            t = &n->tensor();
          }
        }
        // Each weight is one dataset of its own; anything else is not what Keras writes.
        if (!t || !seen.insert(t).second) return std::nullopt;
        std::string listed = layer_path;
        for (const auto& part : parts) listed += "/" + part;
        parts.back() = strip_output_index(parts.back());
        all_known = all_known && torch_name(parts.back()) != nullptr;
        found.push_back({std::move(parts), std::move(listed), t});
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
        std::vector<int> perm;
        if (all_known && leaf == "kernel") perm = kernel_permutation(f.tensor->shape().size());
        p.weights_found.push_back({std::move(name), f.listed, f.tensor, std::move(perm)});
      }
    }
    return p;
  }

  static SchemaDocument map(const Document& raw, const Plan& p) {
    SchemaDocument out;
    Document& doc = out.doc;
    Group& meta = doc.add_group("meta");
    std::string producer = "Keras";
    for (const Group* g : {static_cast<const Group*>(&raw), p.weights})
      if (const Value* v = g->attribute("keras_version"); v && std::holds_alternative<std::string>(*v)) {
        producer += " " + std::get<std::string>(*v);
        break;
      }
    meta.set("schema", "ckpt.checkpoint");
    meta.set("schema_version", int64_t{1});
    meta.set("producer", producer + " (legacy HDF5 weights)");

    Group& state = doc.add_group("model").add_group("state");
    for (const Weight& w : p.weights_found) {
      Shape shape = w.tensor->shape();
      if (!w.perm.empty()) {
        for (size_t i = 0; i < w.perm.size(); ++i) shape[i] = w.tensor->shape()[static_cast<size_t>(w.perm[i])];
        out.transposed.push_back({"model/state/" + w.name, w.perm});
      }
      state.add_tensor(w.name, Tensor(w.tensor->dtype(), std::move(shape), nullptr));
      out.moved.emplace_back("model/state/" + w.name, w.listed);
    }

    // What the plugin recorded of the file, in meta: the mapping moves members, so the records
    // of string and compound datasets and of datasets' attributes would name nothing; each
    // becomes an entry of unread instead. The others stay records.
    const Group* listed_meta = raw.find_group("meta");
    std::vector<std::string> unread;
    if (listed_meta)
      if (const Value* v = listed_meta->attribute("unread"); v && std::holds_alternative<std::vector<std::string>>(*v))
        unread = std::get<std::vector<std::string>>(*v);
    auto record = [&](const char* name) -> std::vector<std::string> {
      const Value* v = listed_meta ? listed_meta->attribute(name) : nullptr;
      return v && std::holds_alternative<std::vector<std::string>>(*v) ? std::get<std::vector<std::string>>(*v)
                                                                        : std::vector<std::string>{};
    };
    for (const auto& s : record("hdf5_string_dataset_paths"))
      unread.push_back(s + ": a string dataset (kept as a value, not as a dataset, in the Keras mapping)");
    for (const auto& s : record("hdf5_compound_dataset_paths"))
      unread.push_back(s + ": a compound dataset (kept as a group of columns in the Keras mapping)");
    if (const Group* d = listed_meta ? listed_meta->find_group(kDatasetAttributes) : nullptr)
      for (const auto& c : d->children()) {
        const auto path = sdk::unescape_name(c.name);
        unread.push_back((path ? *path : c.name) + ": its attributes (a Keras mapping keeps none)");
      }
    if (!unread.empty()) meta.set("unread", unread);
    for (const char* kept : {"hdf5_soft_link_paths", "hdf5_soft_link_targets", "hdf5_external_link_paths",
                             "hdf5_external_link_files", "hdf5_external_link_objects", sdk::kExternalReferencesRecord})
      if (const Value* v = listed_meta ? listed_meta->attribute(kept) : nullptr) meta.set(kept, *v);

    // Everything else of the file (versions, model and training config, optimizer weights) is
    // kept as stored under extra/keras.
    Group& keras = doc.add_group("extra").add_group("keras");
    const std::set<std::string> layer_set(p.layers.begin(), p.layers.end());
    // Every tensor under a member copied as stored moves from its listed path.
    std::function<void(const Group&, const std::string&, const std::string&)> moved = [&](const Group& g, const std::string& to,
                                                                                            const std::string& from) {
      for (const auto& c : g.children()) {
        if (c.is_group()) moved(c.group(), to + "/" + c.name, from + "/" + c.name);
        else out.moved.emplace_back(to + "/" + c.name, from + "/" + c.name);
      }
    };
    auto copy = [&](Group& into, const std::string& to, const std::string& name, const Group& g, const std::string& from) {
      into.add_group(name) = g;
      moved(g, to + "/" + name, from);
    };
    auto keep = [&](const Group& from, const std::string& from_path, bool is_weights, Group& into, const std::string& to) {
      auto listed = [&](const std::string& n) { return from_path.empty() ? n : from_path + "/" + n; };
      for (const auto& a : from.attributes())
        if (!is_layer_names(a.name)) into.set(a.name, a.value);
      for (const auto& c : from.children()) {
        if (&from == &raw && c.name == "meta" && c.is_group()) {
          // The file's own /meta, without the plugin's records (if anything of it is left).
          Group own = c.group();
          for (std::string_view r : kRecords) own.erase_attribute(r);
          own.erase(kDatasetAttributes);
          if (!own.empty()) copy(into, to, c.name, own, listed(c.name));
          continue;
        }
        if (c.is_group() && &c.group() == p.weights) continue;
        if (is_weights && layer_set.count(c.name)) continue;
        if (c.is_group()) {
          copy(into, to, c.name, c.group(), listed(c.name));
        } else {
          into.add_tensor(c.name, c.tensor());
          out.moved.emplace_back(to + "/" + c.name, listed(c.name));
        }
      }
    };
    keep(raw, "", p.weights == &raw, keras, "extra/keras");
    if (p.weights != &raw) {
      const Group& mw = *p.weights;
      const bool any = std::any_of(mw.attributes().begin(), mw.attributes().end(), [](const Attribute& a) { return !is_layer_names(a.name); }) ||
                       std::any_of(mw.children().begin(), mw.children().end(), [&](const Node& c) { return !layer_set.count(c.name); });
      if (any) keep(mw, p.weights_name, true, keras.add_group(p.weights_name), "extra/keras/" + p.weights_name);
    }
    return out;
  }
};

}  // namespace

std::shared_ptr<const LayoutAdapter> keras_legacy_h5() { return std::make_shared<KerasLegacy>(); }

}  // namespace ckpt::layouts
