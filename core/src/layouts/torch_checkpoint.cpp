// A training checkpoint dict of PyTorch's and MegEngine's guides, listed as plain Python data
// (docs/formats/pickle.md, "Checkpoint dicts"): {epoch, model_state_dict | model | state_dict |
// net, optimizer_state_dict | optimizer, loss, ...}. The pickle plugin lists a dict as a group,
// an array as a tensor and a number, a string or a list of them as an attribute; this adapter
// maps such a listing onto ckpt's schema by the rules of the PyTorch plugin's own mapping
// (plugins/pytorch/torch_layout.cpp, docs/formats/pytorch.md), so that a MegEngine or joblib
// pickle of a checkpoint reads as the same document as torch.save's file of it:
// - the state dict -> model/state;
// - torch's optimizer state ({state: {index: buffers}, param_groups: [group]}) -> the optimizer
//   group (state/<parameter name>/<buffer>), indices matched to parameters by their order in
//   the state dict, buffers (running_mean, ...) skipped as model.parameters() skips them;
// - epoch, step (global_step, iteration) and loss -> trainer, everything else -> extra.
// The listing holds less than the pickle (a dict key 0 and "0" are both named "0", None is left
// out, a list and a dict are both groups), so what the pytorch plugin checks on the Python
// objects is checked here on what they are listed as.
#include "builtin.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/sdk_float.hpp>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace ckpt::layouts {

namespace {

constexpr const char* kModelKeys[] = {"model_state_dict", "model", "state_dict", "net"};
constexpr const char* kOptimizerKeys[] = {"optimizer_state_dict", "optimizer"};

// Entries of a state dict that are buffers, not parameters: torch's optimizers index
// model.parameters(), which skips them.
bool is_buffer(std::string_view name) {
  for (std::string_view b : {"running_mean", "running_var", "num_batches_tracked"})
    if (name.ends_with(b)) return true;
  return false;
}

// A dict of arrays only, as a state dict is.
bool is_state_dict(const Group* g) {
  if (!g || g->children().empty() || !g->attributes().empty()) return false;
  for (const Node& c : g->children())
    if (!c.is_tensor()) return false;
  return true;
}

// The first of `keys` the root holds a dict under (its name in `found`): a later key is not
// looked at when an earlier one holds a dict, as torch's mapping does.
const Group* find_dict(const Group& root, std::span<const char* const> keys, const char** found) {
  for (const char* k : keys)
    if (const Group* g = root.find_group(k)) {
      *found = k;
      return g;
    }
  return nullptr;
}

bool has_member(const Group& g, std::string_view name) { return g.attribute(name) || g.find(name); }

// A name not yet used among a group's children (or attributes): name, else name_2, name_3, ...
template <class Taken>
std::string unused(const std::string& name, Taken taken) {
  if (!taken(name)) return name;
  for (size_t i = 2;; ++i)
    if (std::string n = name + "_" + std::to_string(i); !taken(n)) return n;
}
std::string unused_child(const Group& g, const std::string& name) {
  return unused(name, [&](const std::string& n) { return g.find(n) != nullptr; });
}
std::string unused_attribute(const Group& g, const std::string& name) {
  return unused(name, [&](const std::string& n) { return g.attribute(n) != nullptr; });
}

class Mapping {
 public:
  explicit Mapping(const LayoutSource& source) : source_(source) {}

  SchemaDocument run(const Document& root) {
    SchemaDocument out;
    Document& doc = out.doc;
    const char* model_key = nullptr;
    const char* opt_key = nullptr;
    const Group* model = find_dict(root, kModelKeys, &model_key);
    const Group* opt = find_dict(root, kOptimizerKeys, &opt_key);
    if (!is_state_dict(model)) model = nullptr;
    if (opt && !has_member(*opt, "param_groups")) opt = nullptr;
    Group& meta = doc.add_group("meta");
    meta.set("schema", std::string("ckpt.checkpoint"));
    meta.set("schema_version", int64_t{1});
    meta.set("producer", std::string(source_.format == "pytorch" ? "PyTorch (torch.save)" : "Python pickle"));
    // What the plugin could not represent (a pickle's None values) it names in the listing's
    // meta/@unread; the schema's meta names it in turn, so convert names each as a loss.
    const Group* listed_meta = root.find_group("meta");
    const Value* unread = listed_meta ? listed_meta->attribute("unread") : nullptr;
    std::vector<std::string> params;
    std::set<std::string> used;
    if (model) {
      Group& state = doc.add_group("model").add_group("state");
      for (const Node& c : model->children()) {
        copy_tensor(state, c.name, c.tensor(), "model/state/", std::string(model_key) + "/" + c.name);
        if (!is_buffer(c.name)) params.push_back(c.name);
      }
      used.insert(model_key);
    }
    if (opt) {
      Group o;
      std::vector<std::pair<std::string, std::string>> moved;
      const Group* model_state = model ? doc.find_group("model")->find_group("state") : nullptr;
      if (map_optimizer(*opt, opt_key, params, model_state, o, moved)) {
        doc.add_group("optimizer") = std::move(o);
        moved_.insert(moved_.end(), moved.begin(), moved.end());
        used.insert(opt_key);
      }
    }
    Group trainer;
    if (const auto* e = attribute_of<int64_t>(root, "epoch")) {
      trainer.set("epoch", *e);
      used.insert("epoch");
    }
    for (const char* k : {"step", "global_step", "iteration"})
      if (const auto* s = attribute_of<int64_t>(root, k)) {
        trainer.set("step", *s);
        used.insert(k);
        break;
      }
    if (auto loss = number(root, "loss", "loss")) {
      trainer.set("loss", *loss);
      used.insert("loss");
    }
    if (const Group* own = root.find_group("trainer")) {
      merge_group(trainer, *own, "trainer", "trainer");
      used.insert("trainer");
    }
    if (!trainer.empty()) doc.add_group("trainer") = std::move(trainer);
    Group extra;
    if (const Group* own = root.find_group("extra")) {
      merge_group(extra, *own, "extra", "extra");
      used.insert("extra");
    }
    for (const Attribute& a : root.attributes())
      if (!used.count(a.name)) extra.set(unused_attribute(extra, a.name), a.value);
    for (const Node& c : root.children()) {
      if (used.count(c.name)) continue;
      if (unread && c.is_group() && &c.group() == listed_meta) {
        // The pickle's own meta, if it had one, without the plugin's record (now in meta).
        Group own = c.group();
        own.erase_attribute("unread");
        if (own.empty()) continue;
        const std::string n = unused_child(extra, c.name);
        Group& g = extra.add_group(n);
        g = std::move(own);
        g.for_each_tensor([&](const std::string& p, const Tensor&) { moved_.emplace_back("extra/" + n + "/" + p, c.name + "/" + p); });
        continue;
      }
      take(extra, c.name, c, "extra", c.name);
    }
    if (!extra.empty()) doc.add_group("extra") = std::move(extra);
    if (const auto* names = unread ? std::get_if<std::vector<std::string>>(unread) : nullptr) {
      // A None among a mapped optimizer's param group keys (torch's foreach, fused) is no loss:
      // the schema defaults it, and a writer to .pt writes it back as torch does.
      std::vector<std::string> lost;
      const std::string group = opt_key && used.count(opt_key) ? std::string(opt_key) + "/param_groups/0/" : std::string();
      for (const std::string& n : *names) {
        const size_t colon = n.find(':');
        if (!group.empty() && n.starts_with(group) && colon != std::string::npos &&
            schema_or_default_key(n.substr(group.size(), colon - group.size())))
          continue;
        lost.push_back(n);
      }
      if (!lost.empty()) doc.find_group("meta")->set("unread", std::move(lost));
    }
    out.moved = std::move(moved_);
    return out;
  }

 private:
  template <class T>
  static const T* attribute_of(const Group& g, std::string_view name) {
    const Value* v = g.attribute(name);
    return v ? std::get_if<T>(v) : nullptr;
  }

  void copy_tensor(Group& to, const std::string& name, const Tensor& t, const std::string& schema_prefix,
                   const std::string& listed) {
    to.add_tensor(name, t);
    moved_.emplace_back(schema_prefix + name, listed);
  }

  // A member of the listing put into `to` under `name` (or the next unused name), every tensor
  // below it moved with it.
  void take(Group& to, const std::string& name, const Node& member, const std::string& schema_parent,
            const std::string& listed) {
    const std::string n = unused_child(to, name);
    const std::string at = schema_parent + "/" + n;
    if (member.is_tensor()) {
      to.add_tensor(n, member.tensor());
      moved_.emplace_back(at, listed);
      return;
    }
    Group& g = to.add_group(n);
    g = member.group();
    g.for_each_tensor([&](const std::string& p, const Tensor&) { moved_.emplace_back(at + "/" + p, listed + "/" + p); });
  }

  // A number from an int, a float or a one-element tensor (torch's loss, Adam's step); an int
  // a double cannot hold exactly is no number here.
  std::optional<double> number(const Group& g, std::string_view name, const std::string& listed) const {
    if (const Value* v = g.attribute(name)) {
      if (const auto* i = std::get_if<int64_t>(v); i && *i >= -(int64_t{1} << 53) && *i <= (int64_t{1} << 53))
        return static_cast<double>(*i);
      if (const auto* f = std::get_if<double>(v)) return *f;
      return std::nullopt;
    }
    const Tensor* t = g.find_tensor(name);
    if (!t || t->numel() != 1) return std::nullopt;
    return tensor_number(*t, listed);
  }

  std::optional<double> tensor_number(const Tensor& t, const std::string& listed) const {
    std::byte buf[8] = {};
    auto read = [&](size_t n) { source_.read(listed, std::span(buf, n)); };
    auto get = [&](auto v) {
      read(sizeof v);
      std::memcpy(&v, buf, sizeof v);
      return static_cast<double>(v);
    };
    switch (t.dtype()) {
      case DType::f32: return get(float{});
      case DType::f64: return get(double{});
      case DType::i64: return get(int64_t{});
      case DType::i32: return get(int32_t{});
      case DType::f16:
      case DType::bf16: {
        read(2);
        uint16_t h;
        std::memcpy(&h, buf, 2);
        return static_cast<double>(t.dtype() == DType::bf16 ? ckpt::sdk::bf16_to_f32(h) : ckpt::sdk::f16_to_f32(h));
      }
      default: return std::nullopt;
    }
  }

  // A float as ckpt's writer stores it by default (floats=tensor): a 0-d float64 tensor, or a
  // list of them (listed as a group 0, 1, ...) for a float64[] attribute.
  std::optional<Value> written_floats(const Node& n, const std::string& listed) const {
    auto one = [&](const Node& x, const std::string& p) -> std::optional<double> {
      if (!x.is_tensor() || !x.tensor().shape().empty() || x.tensor().dtype() != DType::f64) return std::nullopt;
      return tensor_number(x.tensor(), p);
    };
    if (n.is_tensor()) {
      if (auto f = one(n, listed)) return Value(*f);
      return std::nullopt;
    }
    const Group& g = n.group();
    if (g.children().empty() || !g.attributes().empty()) return std::nullopt;
    std::vector<double> out;
    for (const Node& x : g.children()) {
      if (x.name != std::to_string(out.size())) return std::nullopt;
      auto f = one(x, listed + "/" + x.name);
      if (!f) return std::nullopt;
      out.push_back(*f);
    }
    return Value(std::move(out));
  }

  // ckpt's writer keeps a checkpoint's whole trainer and extra groups under the keys `trainer`
  // and `extra`, their floats as 0-d tensors: they go back into those groups. Members already
  // there (the top-level epoch and loss) are not read twice.
  void merge_group(Group& g, const Group& own, const std::string& schema_path, const std::string& listed) {
    for (const Attribute& a : own.attributes()) {
      if (const Value* had = g.attribute(a.name); had && value_equal(*had, a.value)) continue;
      g.set(unused_attribute(g, a.name), a.value);
    }
    for (const Node& c : own.children()) {
      const std::string p = listed + "/" + c.name;
      auto floats = written_floats(c, p);
      if (const Value* had = g.attribute(c.name); had && floats && value_equal(*had, *floats)) continue;
      if (floats && !g.find(c.name)) {
        g.set(c.name, std::move(*floats));
      } else if (c.is_group() && !g.find(c.name)) {
        merge_group(g.add_group(c.name), c.group(), schema_path + "/" + c.name, p);
      } else {
        take(g, c.name, c, schema_path, p);
      }
    }
  }

  // Adam and AdamW store the same keys except: torch 1.13's AdamW lacks `fused` (its Adam has
  // it), torch 2.7 and later name AdamW by `decoupled_weight_decay`.
  static std::string adam_kind(const Group& g) {
    if (const auto* d = attribute_of<bool>(g, "decoupled_weight_decay")) return *d ? "adamw" : "adam";
    return has_member(g, "fused") ? "adam" : "adamw";
  }

  // The keys of a param group the schema maps itself, or that torch's optimizers default on load.
  static bool schema_or_default_key(const std::string& key) {
    static const std::unordered_set<std::string> known = {
        "lr", "momentum", "dampening", "nesterov", "betas", "eps", "weight_decay", "amsgrad", "maximize",
        "foreach", "differentiable", "capturable", "fused", "decoupled_weight_decay"};
    return known.count(key) > 0;
  }

  static std::optional<int64_t> index_name(const std::string& name) {
    int64_t i = 0;
    const char* end = name.data() + name.size();
    auto [p, ec] = std::from_chars(name.data(), end, i);
    if (ec != std::errc() || p != end || name.empty() || (name.size() > 1 && (name[0] == '0' || name.substr(0, 2) == "-0")))
      return std::nullopt;
    return i;
  }

  // Buffers torch's optimizers keep in their parameter's shape: one of another shape means the
  // pairing by position is wrong (an optimizer built over the parameters in another order than
  // the state dict's), and the optimizer stays unmapped. An order that swaps parameters of one
  // shape cannot be told apart this way (docs/formats/pytorch.md).
  static bool per_parameter(std::string_view buffer) {
    return buffer == "momentum_buffer" || buffer == "exp_avg" || buffer == "exp_avg_sq" || buffer == "max_exp_avg_sq";
  }

  bool map_optimizer(const Group& opt, const std::string& opt_key, const std::vector<std::string>& names,
                     const Group* model_state, Group& out, std::vector<std::pair<std::string, std::string>>& moved) const {
    const Group* state = opt.find_group("state");
    const Group* groups = opt.find_group("param_groups");
    if (!state || !groups || groups->children().size() != 1 || !groups->attributes().empty()) return false;
    const Node& only = groups->children()[0];
    if (only.name != "0" || !only.is_group()) return false;
    const Group& g = only.group();
    const std::string gpath = opt_key + "/param_groups/0";
    const auto* params = attribute_of<std::vector<int64_t>>(g, "params");
    if (!params || params->size() != names.size()) return false;
    // A state dict does not name its optimizer class; its group's keys do.
    std::string type;
    if (has_member(g, "momentum") && has_member(g, "dampening") && has_member(g, "nesterov")) type = "sgd";
    else if (has_member(g, "betas") && has_member(g, "amsgrad")) type = adam_kind(g);
    else return false;
    // Mapped only when the schema shows every value torch will use.
    for (const char* key : {"lr", "momentum", "dampening", "eps", "weight_decay"})
      if (has_member(g, key) && !number(g, key, gpath + "/" + key)) return false;
    for (const char* key : {"nesterov", "amsgrad", "maximize", "foreach", "fused", "capturable", "differentiable"})
      if (has_member(g, key) && !attribute_of<bool>(g, key)) return false;
    std::unordered_map<int64_t, const std::string*> index;
    for (size_t i = 0; i < params->size(); ++i)
      if (!index.emplace((*params)[i], &names[i]).second) return false;
    if (!state->attributes().empty()) return false;
    Group st;
    std::optional<double> step;
    for (const Node& p : state->children()) {
      const auto i = index_name(p.name);
      auto it = i ? index.find(*i) : index.end();
      if (it == index.end() || !p.is_group()) return false;
      const std::string& name = *it->second;
      const std::string listed = opt_key + "/state/" + p.name;
      Group& pg = st.add_group(name);
      const Group& bufs = p.group();
      for (const Attribute& a : bufs.attributes()) {
        if (a.name != "step") return false;
        auto s = number(bufs, "step", listed + "/step");
        if (!s || (step && *step != *s) || *s != std::trunc(*s)) return false;  // one step for all, or unmapped
        step = *s;
      }
      for (const Node& b : bufs.children()) {
        if (!b.is_tensor()) return false;
        if (b.name == "step") {
          auto s = number(bufs, "step", listed + "/step");
          if (!s || (step && *step != *s) || *s != std::trunc(*s)) return false;
          step = *s;
          continue;
        }
        if (per_parameter(b.name)) {
          const Node* param = model_state ? model_state->find(name) : nullptr;
          if (!param || !param->is_tensor() || param->tensor().shape() != b.tensor().shape()) return false;
        }
        pg.add_tensor(b.name, b.tensor());
        moved.emplace_back("optimizer/state/" + name + "/" + b.name, listed + "/" + b.name);
      }
    }
    auto num = [&](const char* key, double fallback) { return number(g, key, gpath + "/" + key).value_or(fallback); };
    if (step) out.set("step", static_cast<int64_t>(*step));
    out.set("type", type);
    out.set("lr", num("lr", 0.001));
    if (type == "sgd") {
      out.set("momentum", num("momentum", 0));
      out.set("dampening", num("dampening", 0));
      const auto* nesterov = attribute_of<bool>(g, "nesterov");
      out.set("nesterov", nesterov && *nesterov);
    } else {
      std::vector<double> betas;
      if (const Value* v = g.attribute("betas")) {
        if (const auto* f = std::get_if<std::vector<double>>(v)) betas = *f;
        else if (const auto* i = std::get_if<std::vector<int64_t>>(v)) betas.assign(i->begin(), i->end());
      } else if (const Node* b = g.find("betas")) {
        auto f = written_floats(*b, gpath + "/betas");
        if (f) betas = std::get<std::vector<double>>(*f);
      }
      if (betas.size() != 2) return false;
      out.set("betas", std::move(betas));
      out.set("eps", num("eps", 1e-8));
    }
    out.set("weight_decay", num("weight_decay", 0));
    for (const char* flag : {"amsgrad", "maximize", "foreach", "fused", "capturable", "differentiable"})
      if (const auto* b = attribute_of<bool>(g, flag); b && *b) out.set(flag, true);
    // Every other key of the group is kept as it is: LR schedulers add their own (initial_lr,
    // OneCycleLR's max_lr, ...) and need them to resume.
    for (const Attribute& a : g.attributes())
      if (a.name != "params" && a.name != "step" && !out.attribute(a.name) && !schema_or_default_key(a.name))
        out.set(a.name, a.value);
    for (const Node& c : g.children())
      if (c.name != "step" && !out.attribute(c.name) && !schema_or_default_key(c.name))
        if (auto f = written_floats(c, gpath + "/" + c.name)) out.set(c.name, std::move(*f));
    out.add_group("state") = std::move(st);
    return true;
  }

  const LayoutSource& source_;
  std::vector<std::pair<std::string, std::string>> moved_;
};

class TorchCheckpoint final : public LayoutAdapter {
 public:
  std::string_view name() const override { return "torch-checkpoint"; }

  bool recognises(const Document& native, const LayoutSource& source) const override {
    if (source.format != "pickle") return false;
    // An object of a class ckpt does not run is listed with its class: not a dict.
    if (native.attribute("__class__") || native.attribute("__call__")) return false;
    const char* key = nullptr;
    const Group* model = find_dict(native, kModelKeys, &key);
    const Group* opt = find_dict(native, kOptimizerKeys, &key);
    return is_state_dict(model) || (opt && has_member(*opt, "param_groups"));
  }

  SchemaDocument to_schema(Document native, const LayoutSource& source) const override {
    return Mapping(source).run(native);
  }

  // Written as the schema's document: the pickle format has no writer, and the pytorch plugin
  // lays a checkpoint out for torch itself.
  std::optional<Group> to_native(const Document&, std::string_view) const override { return std::nullopt; }
};

}  // namespace

std::shared_ptr<const LayoutAdapter> torch_checkpoint() { return std::make_shared<TorchCheckpoint>(); }

}  // namespace ckpt::layouts

// Not yet here: the pytorch plugin's own files. plugins/pytorch/torch_layout.cpp still maps the
// unpickled objects of a .pt file itself, because three codec checks need the mapping on the
// Python objects, before any listing: a file ckpt wrote must hold in data.pkl what its writer
// makes of its skeleton (agreement.cpp), a file written after meta/@torch_layout must map back
// to the very document (pt_reader.cpp read_own_file, pt_writer.cpp followed_layout), and a
// foreign file keeps its layout only where ckpt's writer would not give torch the same object
// (keep_user_layout). Moving it takes: (1) the plugin listing data.pkl exactly enough for this
// adapter (integer keys, tuples against lists, None; a record of each in the listing) and this
// adapter recognising format "pytorch"; (2) LayoutAdapter::to_native able to hand the writer a
// re-pathed view (torch's dict with the schema's tensors at other paths, 0-d step tensors the
// writer makes), so that torch_object becomes host code; (3) the plugin's checks then comparing
// data.pkl with the native listing the host gave its writer, which the skeleton would hold.
