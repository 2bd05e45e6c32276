#include "torch_layout.hpp"

#include <ckpt/sdk_float.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace ckpt_pytorch {

using namespace ckpt_pickle;

namespace {

// Entries of a state dict that are buffers, not parameters: torch's optimizers index
// model.parameters(), which skips them.
bool is_buffer(std::string_view name) {
  for (std::string_view b : {"running_mean", "running_var", "num_batches_tracked"})
    if (name.size() >= b.size() && name.substr(name.size() - b.size()) == b) return true;
  return false;
}

bool is_state_dict(const Dict* d) {
  if (!d || d->entries.empty()) return false;
  for (const auto& [k, v] : d->entries)
    if (k->kind != Kind::string || v->kind != Kind::array) return false;
  return true;
}

const Dict* find_dict(const Dict& d, std::initializer_list<const char*> keys, const char** found) {
  for (const char* k : keys)
    if (const Dict* v = as_dict(d.find(k))) {
      *found = k;
      return v;
    }
  return nullptr;
}

// A number from an int, a float, or a one-element tensor (torch's loss, Adam's step).
std::optional<double> number(const Obj* o, DocBuilder& b) {
  if (!o) return std::nullopt;
  if (const Scalar* s = as_scalar(o)) {
    // An int a double cannot hold exactly is no number here: it stays an int, where it is kept.
    if (s->kind == Kind::integer && s->i >= -(int64_t{1} << 53) && s->i <= (int64_t{1} << 53)) return static_cast<double>(s->i);
    if (s->kind == Kind::floating) return s->f;
    return std::nullopt;
  }
  const Array* a = as_array(o);
  if (!a) return std::nullopt;
  uint64_t n = 1;
  for (int64_t d : a->shape) n *= static_cast<uint64_t>(d);
  if (n != 1) return std::nullopt;
  TensorEntry& e = b.entry(b.tensor(*a, "(number)"));
  std::byte buf[8] = {};
  e.copy_to(std::span(buf, ckpt::sdk::dtype_size(e.dtype)));
  auto get = [&](auto v) {
    std::memcpy(&v, buf, sizeof v);
    return static_cast<double>(v);
  };
  switch (e.dtype) {
    case CKPT_DTYPE_F32: return get(float{});
    case CKPT_DTYPE_F64: return get(double{});
    case CKPT_DTYPE_I64: return get(int64_t{});
    case CKPT_DTYPE_I32: return get(int32_t{});
    case CKPT_DTYPE_F16:
    case CKPT_DTYPE_BF16: {
      uint16_t h;
      std::memcpy(&h, buf, 2);
      return static_cast<double>(e.dtype == CKPT_DTYPE_BF16 ? ckpt::sdk::bf16_to_f32(h) : ckpt::sdk::f16_to_f32(h));
    }
    default: return std::nullopt;
  }
}

// Adam and AdamW store the same keys except: torch 1.13's AdamW lacks `fused` (its Adam has
// it), torch 2.7 and later name AdamW by `decoupled_weight_decay`. In between the two are
// told apart by nothing, and are the same algorithm when weight_decay is 0.
std::string adam_kind(const Dict& g) {
  if (const Scalar* d = as_scalar(g.find("decoupled_weight_decay")); d && d->kind == Kind::boolean)
    return d->b ? "adamw" : "adam";
  return g.find("fused") ? "adam" : "adamw";
}

std::optional<Value> written_floats(const Obj* o, DocBuilder& b);

// The keys of a param group the schema maps itself (type, lr, ...), or that torch's
// optimizers default on load and ckpt's writer writes as they do (foreach, differentiable, ...).
bool schema_or_default_key(const std::string& key) {
  static const std::unordered_set<std::string> known = {
      "lr", "momentum", "dampening", "nesterov", "betas", "eps", "weight_decay", "amsgrad", "maximize",
      "foreach", "differentiable", "capturable", "fused", "decoupled_weight_decay"};
  return known.count(key) > 0;
}

// Whether torch's optimizer state `opt`, read as map_optimizer pairs it with parameters (by
// position in its one group), files a per-parameter buffer under a parameter of another shape:
// momentum_buffer (SGD) and exp_avg, exp_avg_sq, max_exp_avg_sq (Adam, AdamW) always have
// their parameter's shape, so such a pairing is wrong (an optimizer built over the parameters
// in another order than the state dict's), and the state must stay unmapped. An order that
// swaps parameters of one shape cannot be told apart this way (docs/formats/pytorch.md).
bool state_shapes_contradict(const Dict& opt, const std::vector<std::string>& names, const Node* model_state, DocBuilder& b) {
  const Dict* state = as_dict(opt.find("state"));
  const Seq* groups = as_seq(opt.find("param_groups"));
  const Dict* g = groups && groups->items.size() == 1 ? as_dict(groups->items[0]) : nullptr;
  const Seq* params = g ? as_seq(g->find("params")) : nullptr;
  if (!state || !params || params->items.size() != names.size() || !model_state) return false;  // not paired at all
  std::unordered_map<int64_t, const std::vector<int64_t>*> shape_of;
  for (size_t i = 0; i < names.size(); ++i) {
    const Scalar* s = as_scalar(params->items[i]);
    const Node* p = model_state->child(names[i]);
    if (!s || s->kind != Kind::integer || !p || p->is_group) return false;
    shape_of.emplace(s->i, &b.entry(p->tensor_id).shape);
  }
  for (const auto& [k, v] : state->entries) {
    const Scalar* s = as_scalar(k);
    const Dict* bufs = as_dict(v);
    auto it = s && s->kind == Kind::integer ? shape_of.find(s->i) : shape_of.end();
    if (it == shape_of.end() || !bufs) continue;
    for (const auto& [bk, bv] : bufs->entries) {
      const Text* key = as_text(bk);
      const Array* a = as_array(bv);
      if (!key || !a) continue;
      const std::string_view n = key->str();
      if ((n == "momentum_buffer" || n == "exp_avg" || n == "exp_avg_sq" || n == "max_exp_avg_sq") && a->shape != *it->second)
        return true;
    }
  }
  return false;
}

bool map_optimizer(const Dict& opt, const std::vector<std::string>& names, DocBuilder& b, Node& out) {
  const Dict* state = as_dict(opt.find("state"));
  const Seq* groups = as_seq(opt.find("param_groups"));
  if (!state || !groups || groups->items.size() != 1) return false;
  const Dict* g = as_dict(groups->items[0]);
  const Seq* params = g ? as_seq(g->find("params")) : nullptr;
  if (!params || params->items.size() != names.size()) return false;
  // A state dict does not name its optimizer class; its group's keys do. RMSprop also has
  // momentum, and Adamax, NAdam and RAdam betas, so look for keys only SGD or Adam(W) have.
  std::string type;
  if (g->find("momentum") && g->find("dampening") && g->find("nesterov")) type = "sgd";
  else if (g->find("betas") && g->find("amsgrad")) type = adam_kind(*g);
  else return false;
  // Mapped only when the schema shows every value torch will use: a hyper-parameter that is
  // not a number, a flag that is not a bool, or per-parameter steps that differ leave the
  // optimizer in extra as it is.
  for (const char* key : {"lr", "momentum", "dampening", "eps", "weight_decay"})
    if (const Obj* v = g->find(key); v && !number(v, b)) return false;
  for (const char* key : {"nesterov", "amsgrad", "maximize"})
    if (const Scalar* v = as_scalar(g->find(key)); g->find(key) && (!v || v->kind != Kind::boolean)) return false;
  for (const char* key : {"foreach", "fused", "capturable", "differentiable"})
    if (const Obj* v = g->find(key); v && v->kind != Kind::none && v->kind != Kind::boolean) return false;
  // torch's parameter index -> our parameter name, by position in the group.
  std::unordered_map<int64_t, const std::string*> index;
  for (size_t i = 0; i < params->items.size(); ++i) {
    const Scalar* s = as_scalar(params->items[i]);
    if (!s || s->kind != Kind::integer || !index.emplace(s->i, &names[i]).second) return false;
  }
  auto name_of = [&](const Obj* k) -> const std::string* {
    const Scalar* s = as_scalar(k);
    if (!s || s->kind != Kind::integer) return nullptr;
    auto it = index.find(s->i);
    return it == index.end() ? nullptr : it->second;
  };
  Node st;
  st.name = "state";
  std::optional<double> step;
  for (const auto& [k, v] : state->entries) {
    const std::string* name = name_of(k);
    const Dict* bufs = as_dict(v);
    if (!name || !bufs) return false;
    Node& pg = st.add_group(*name);
    for (const auto& [bk, bv] : bufs->entries) {
      const Text* kt = as_text(bk);
      if (!kt || kt->kind != Kind::string) return false;
      const std::string key = DocBuilder::key_name(bk);
      if (key == "step") {
        auto s = number(bv, b);
        if (!s || (step && *step != *s) || *s != std::trunc(*s)) return false;  // one step for all, or unmapped
        step = *s;
      } else if (const Array* a = as_array(bv)) {
        pg.add_tensor(key, b.tensor(*a, "optimizer/state/" + *name + "/" + key));
      } else {
        return false;
      }
    }
  }
  auto num = [&](const char* key, double fallback) { return number(g->find(key), b).value_or(fallback); };
  if (step) out.set("step", Value::integer(static_cast<int64_t>(*step)));
  out.set("type", Value::string(type));
  out.set("lr", Value::floating(num("lr", 0.001)));
  if (type == "sgd") {
    out.set("momentum", Value::floating(num("momentum", 0)));
    out.set("dampening", Value::floating(num("dampening", 0)));
    const Scalar* nesterov = as_scalar(g->find("nesterov"));
    out.set("nesterov", Value::boolean(nesterov && nesterov->b));
  } else {
    Value betas;
    betas.type = CKPT_VALUE_FLOAT64_ARRAY;
    const Seq* bt = as_seq(g->find("betas"));
    if (!bt || bt->items.size() != 2) return false;
    for (const Obj* x : bt->items) betas.floats.push_back(number(x, b).value_or(0));
    out.set("betas", betas);
    out.set("eps", Value::floating(num("eps", 1e-8)));
  }
  out.set("weight_decay", Value::floating(num("weight_decay", 0)));
  // Options ckpt's trainer does not have are kept when they change the update, and so are
  // torch's implementation switches when set (the writer writes them off otherwise).
  for (const char* flag : {"amsgrad", "maximize", "foreach", "fused", "capturable", "differentiable"})
    if (const Scalar* s = as_scalar(g->find(flag)); s && s->kind == Kind::boolean && s->b) out.set(flag, Value::boolean(true));
  // Every other key of the group is kept as it is: LR schedulers add their own (initial_lr,
  // OneCycleLR's max_lr, min_lr, max_momentum, base_momentum) and need them to resume. None
  // (foreach, fused) has no place in a document; torch's optimizers default those keys on load.
  for (const auto& [k, v] : g->entries) {
    const std::string key = DocBuilder::key_name(k);
    if (key == "params" || key == "step" || out.attribute(key) || schema_or_default_key(key)) continue;
    if (auto a = DocBuilder::attribute(v)) out.set(key, std::move(*a));
    else if (auto f = written_floats(v, b)) out.set(key, std::move(*f));
  }
  out.add_child(std::move(st));
  return true;
}

// A float as ckpt's writer stores it by default (`floats=tensor`): a 0-d float64 tensor, or a
// list or tuple of them for a float64[] attribute.
std::optional<Value> written_floats(const Obj* o, DocBuilder& b) {
  auto one = [&](const Obj* x) -> std::optional<double> {
    const Array* a = as_array(x);
    if (!a || !a->shape.empty() || a->dtype != CKPT_DTYPE_F64) return std::nullopt;
    return number(x, b);
  };
  if (auto f = one(o)) return Value::floating(*f);
  const Seq* s = as_seq(o);
  if (!s || s->items.empty()) return std::nullopt;
  Value out;
  out.type = CKPT_VALUE_FLOAT64_ARRAY;
  for (const Obj* x : s->items) {
    auto f = one(x);
    if (!f) return std::nullopt;
    out.floats.push_back(*f);
  }
  return out;
}

// ckpt's writer keeps a checkpoint's whole trainer and extra groups under the keys `trainer`
// and `extra` (torch_object below), their floats as 0-d tensors: read without ckpt's own
// copy of the document, they go back into those groups, not into extra/trainer and
// extra/extra. Members already there (the top-level epoch and loss) are not read twice.
void merge_group(Node& g, const Dict& d, const std::string& path, DocBuilder& b, int depth) {
  if (depth > kMaxDepth) ckpt::sdk::fail(CKPT_ERR_LIMIT, path + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
  for (const auto& [k, v] : d.entries) {
    const std::string name = DocBuilder::key_name(k);
    // Read once when it says what the top-level key said; kept under its own name otherwise.
    if (const Value* had = g.attribute(name)) {
      auto mine = DocBuilder::attribute(v);
      if (!mine) mine = written_floats(v, b);
      if (mine && same_value(*had, *mine)) continue;
    }
    if (const Dict* sub = as_dict(v); sub && !g.child(name)) {
      merge_group(g.add_group(name), *sub, path + "/" + name, b, depth + 1);
    } else if (auto f = written_floats(v, b); f && !g.child(name)) {
      g.set(name, std::move(*f));
    } else {
      b.put(g, name, v, path, depth);
    }
  }
}

void flatten_state(const Dict& d, const std::string& prefix, Node& state, std::vector<std::string>& params, DocBuilder& b) {
  for (const auto& [k, v] : d.entries) {
    const std::string name = prefix + DocBuilder::key_name(k);
    if (const Array* a = as_array(v)) {
      const std::string unique = unique_child_name(state, name);
      state.add_tensor(unique, b.tensor(*a, "model/state/" + unique));
      if (!is_buffer(unique)) params.push_back(unique);
    }
  }
}

}  // namespace

Node map_torch_object(const Obj* root, DocBuilder& b) {
  Node doc;
  const Dict* d = as_dict(root);
  if (!d) {
    b.put(doc, root->kind == Kind::array ? "tensor" : "value", root, "", 0);
    return doc;
  }
  if (is_state_dict(d)) {  // a plain state dict: a document without meta, its tensors at the root
    for (const auto& [k, v] : d->entries) {
      const std::string name = unique_child_name(doc, DocBuilder::key_name(k));
      doc.add_tensor(name, b.tensor(*static_cast<const Array*>(v), name));
    }
    return doc;
  }
  const char* model_key = nullptr;
  const char* opt_key = nullptr;
  const Dict* model = find_dict(*d, {"model_state_dict", "model", "state_dict", "net"}, &model_key);
  const Dict* opt = find_dict(*d, {"optimizer_state_dict", "optimizer"}, &opt_key);
  if (model && !is_state_dict(model)) model = nullptr;
  if (opt && !opt->find("param_groups")) opt = nullptr;
  if (!model && !opt) {
    b.fill(doc, root, "", 0);
    return doc;
  }
  // A training checkpoint (the layout of PyTorch's and MegEngine's guides): ckpt's schema.
  Node& meta = doc.add_group("meta");
  meta.set("schema", Value::string("ckpt.checkpoint"));
  meta.set("schema_version", Value::integer(1));
  meta.set("producer", Value::string("PyTorch (torch.save)"));
  std::vector<std::string> params;
  if (model) {
    Node& state = doc.add_group("model").add_group("state");
    flatten_state(*model, "", state, params, b);
  }
  std::set<std::string> used;
  if (model) used.insert(model_key);
  if (opt) {
    Node o;
    o.name = "optimizer";
    const Node* model_group = doc.child("model");
    if (!state_shapes_contradict(*opt, params, model_group ? model_group->child("state") : nullptr, b) &&
        map_optimizer(*opt, params, b, o)) {
      doc.add_child(std::move(o));
      used.insert(opt_key);
    }
  }
  Node trainer;
  trainer.name = "trainer";
  if (const Scalar* e = as_scalar(d->find("epoch")); e && e->kind == Kind::integer) {
    trainer.set("epoch", Value::integer(e->i));
    used.insert("epoch");
  }
  for (const char* k : {"step", "global_step", "iteration"})
    if (const Scalar* s = as_scalar(d->find(k)); s && s->kind == Kind::integer) {
      trainer.set("step", Value::integer(s->i));
      used.insert(k);
      break;
    }
  if (auto loss = number(d->find("loss"), b)) {
    trainer.set("loss", Value::floating(*loss));
    used.insert("loss");
  }
  if (const Dict* own = as_dict(d->find("trainer"))) {
    merge_group(trainer, *own, "trainer", b, 1);
    used.insert("trainer");
  }
  if (!trainer.attributes.empty() || !trainer.children.empty()) doc.add_child(std::move(trainer));
  Node extra;
  extra.name = "extra";
  if (const Dict* own = as_dict(d->find("extra"))) {
    merge_group(extra, *own, "extra", b, 1);
    used.insert("extra");
  }
  for (const auto& [k, v] : d->entries) {
    const Text* t = as_text(k);
    if (t && used.count(std::string(t->str()))) continue;
    b.put(extra, DocBuilder::key_name(k), v, "extra", 1);
  }
  if (!extra.attributes.empty() || !extra.children.empty()) doc.add_child(std::move(extra));
  return doc;
}

// ---- writing -----------------------------------------------------------------------------

namespace {

using T = PyOut::T;

PyOut attribute_value(const Value& v, const TorchWriteContext& ctx) {
  switch (v.type) {
    case CKPT_VALUE_BOOL: return PyOut::boolean(v.b);
    case CKPT_VALUE_INT64: return PyOut::integer(v.i);
    case CKPT_VALUE_FLOAT64: return ctx.number(v.f);
    case CKPT_VALUE_STRING: return PyOut::str(v.s);
    default: {
      PyOut l = PyOut::container(T::list);
      for (uint8_t b : v.bools) l.items.push_back(PyOut::boolean(b));
      for (int64_t i : v.ints) l.items.push_back(PyOut::integer(i));
      for (double f : v.floats) l.items.push_back(ctx.number(f));
      for (const auto& s : v.strings) l.items.push_back(PyOut::str(s));
      return l;
    }
  }
}

// A group as torch users would write it: a dict of its tensors, sub-dicts and values.
PyOut natural(const Node& g, const TorchWriteContext& ctx) {
  PyOut d = PyOut::container(T::odict);
  for (const Node& c : g.children) d.add(c.name, c.is_group ? natural(c, ctx) : ctx.tensor(c.tensor_id));
  for (const auto& [k, v] : g.attributes)
    if (!g.child(k)) d.add(k, attribute_value(v, ctx));
  return d;
}

void flatten(const Node& g, const std::string& prefix, PyOut& out, std::vector<std::string>& names, const TorchWriteContext& ctx) {
  for (const Node& c : g.children) {
    const std::string n = prefix + c.name;
    if (c.is_group) {
      flatten(c, n + ".", out, names, ctx);
    } else {
      out.add(n, ctx.tensor(c.tensor_id));
      if (!is_buffer(n)) names.push_back(n);
    }
  }
}

double num(const Node& g, const char* key, double fallback) {
  const Value* v = g.attribute(key);
  if (v && v->type == CKPT_VALUE_FLOAT64) return v->f;
  if (v && v->type == CKPT_VALUE_INT64) return static_cast<double>(v->i);
  return fallback;
}

bool flag(const Node& g, const char* key) {
  const Value* v = g.attribute(key);
  return v && v->type == CKPT_VALUE_BOOL && v->b;
}

std::optional<PyOut> torch_optimizer(const Node& opt, const std::vector<std::string>& names, const TorchWriteContext& ctx) {
  const Value* type = opt.attribute("type");
  if (!type || type->type != CKPT_VALUE_STRING) return std::nullopt;
  const std::string& t = type->s;
  if (t != "sgd" && t != "adam" && t != "adamw") return std::nullopt;
  const Node* state = opt.child("state");
  for (const Node& c : opt.children)
    if (c.name != "state") return std::nullopt;
  if (state) {
    if (!state->attributes.empty()) return std::nullopt;
    const std::unordered_set<std::string> params(names.begin(), names.end());
    for (const Node& p : state->children) {
      if (!p.is_group || !params.count(p.name)) return std::nullopt;
      for (const Node& buf : p.children)
        if (buf.is_group) return std::nullopt;
    }
  }
  const Value* step = opt.attribute("step");
  const double steps = step && step->type == CKPT_VALUE_INT64 ? static_cast<double>(step->i) : 0;
  PyOut out = PyOut::container(T::dict);
  PyOut& st = out.add("state", PyOut::container(T::dict));
  for (size_t i = 0; i < names.size(); ++i) {
    const Node* p = state ? state->child(names[i]) : nullptr;
    if (!p) continue;
    PyOut bufs = PyOut::container(T::dict);
    if (t != "sgd") bufs.add("step", ctx.step_tensor(static_cast<float>(steps)));
    for (const Node& buf : p->children) bufs.add(buf.name, ctx.tensor(buf.tensor_id));
    st.entries.emplace_back(PyOut::integer(static_cast<int64_t>(i)), std::move(bufs));
  }
  PyOut g = PyOut::container(T::dict);
  const PyOut none;
  auto off = [&](const char* key) { return flag(opt, key) ? PyOut::boolean(true) : PyOut::boolean(false); };
  auto unset = [&](const char* key) { return flag(opt, key) ? PyOut::boolean(true) : none; };
  if (t == "sgd") {
    g.add("lr", ctx.number(num(opt, "lr", 0.01)));
    g.add("momentum", ctx.number(num(opt, "momentum", 0)));
    g.add("dampening", ctx.number(num(opt, "dampening", 0)));
    g.add("weight_decay", ctx.number(num(opt, "weight_decay", 0)));
    g.add("nesterov", PyOut::boolean(flag(opt, "nesterov")));
    g.add("maximize", PyOut::boolean(flag(opt, "maximize")));
    g.add("foreach", unset("foreach"));
    g.add("differentiable", off("differentiable"));
  } else {
    g.add("lr", ctx.number(num(opt, "lr", 0.001)));
    PyOut betas = PyOut::container(T::tuple);
    const Value* b = opt.attribute("betas");
    const bool two = b && b->type == CKPT_VALUE_FLOAT64_ARRAY && b->floats.size() == 2;
    betas.items.push_back(ctx.number(two ? b->floats[0] : 0.9));
    betas.items.push_back(ctx.number(two ? b->floats[1] : 0.999));
    g.add("betas", std::move(betas));
    g.add("eps", ctx.number(num(opt, "eps", 1e-8)));
    g.add("weight_decay", ctx.number(num(opt, "weight_decay", t == "adamw" ? 0.01 : 0)));
    g.add("amsgrad", PyOut::boolean(flag(opt, "amsgrad")));
    g.add("maximize", PyOut::boolean(flag(opt, "maximize")));
    g.add("foreach", unset("foreach"));
    g.add("capturable", off("capturable"));
    if (t == "adam") {  // torch 1.13's Adam has these two, its AdamW not: how a reader tells them apart
      g.add("differentiable", off("differentiable"));
      g.add("fused", off("fused"));
    }
  }
  // The group's keys the schema does not name (an LR scheduler's initial_lr, max_lr, ...).
  for (const auto& [k, v] : opt.attributes)
    if (k != "type" && k != "step" && !schema_or_default_key(k)) g.add(k, attribute_value(v, ctx));
  PyOut ids = PyOut::container(T::list);
  for (size_t i = 0; i < names.size(); ++i) ids.items.push_back(PyOut::integer(static_cast<int64_t>(i)));
  g.add("params", std::move(ids));
  PyOut& groups = out.add("param_groups", PyOut::container(T::list));
  groups.items.push_back(std::move(g));
  return out;
}

bool is_checkpoint(const Node& root) {
  const Node* meta = root.child("meta");
  const Value* schema = meta && meta->is_group ? meta->attribute("schema") : nullptr;
  return schema && schema->type == CKPT_VALUE_STRING && schema->s == "ckpt.checkpoint";
}

bool has_content(const Node* g) { return g && (!g->is_group || !g->attributes.empty() || !g->children.empty()); }

}  // namespace

PyOut torch_object(const Node& root, const TorchWriteContext& ctx) {
  const Node* model = root.child("model");
  const Node* state = model && model->is_group ? model->child("state") : nullptr;
  if (!is_checkpoint(root) || !state || !state->is_group) {
    // Tensors at the root beside a meta group of strings (a safetensors file's __metadata__):
    // a state dict and what describes it. The state dict is what torch users load with
    // load_state_dict(strict=True), so meta stays in ckpt/document.json only, as a checkpoint's.
    // So do the records ckpt keeps in meta of every file it writes (integrity, conversion).
    const Node* meta = root.child("meta");
    auto strings_only = [](const Node& g) {
      return std::all_of(g.children.begin(), g.children.end(),
                         [](const Node& c) {
                           return c.is_group && c.children.empty() && (c.name == "integrity" || c.name == "conversion");
                         }) &&
             std::all_of(g.attributes.begin(), g.attributes.end(),
                         [](const auto& a) { return a.second.type == CKPT_VALUE_STRING; });
    };
    const bool state_dict = meta && meta->is_group && strings_only(*meta) && root.attributes.empty() &&
                            std::all_of(root.children.begin(), root.children.end(),
                                        [&](const Node& c) { return !c.is_group || &c == meta; });
    if (!state_dict) return natural(root, ctx);
    PyOut sd = PyOut::container(T::odict);
    for (const Node& c : root.children)
      if (&c != meta) sd.add(c.name, ctx.tensor(c.tensor_id));
    return sd;
  }
  PyOut sd = PyOut::container(T::odict);
  std::vector<std::string> names;
  flatten(*state, "", sd, names, ctx);
  const Node* opt = root.child("optimizer");
  const Node* trainer = root.child("trainer");
  const Node* extra = root.child("extra");
  // Only weights: a plain state dict, which load_state_dict takes as it is.
  if (!has_content(opt) && !has_content(trainer) && !has_content(extra)) return sd;
  PyOut d = PyOut::container(T::dict);
  const Value* epoch = trainer && trainer->is_group ? trainer->attribute("epoch") : nullptr;
  if (epoch && epoch->type == CKPT_VALUE_INT64) d.add("epoch", PyOut::integer(epoch->i));
  d.add("model_state_dict", std::move(sd));
  if (has_content(opt) && opt->is_group) {
    std::optional<PyOut> o = torch_optimizer(*opt, names, ctx);
    d.add("optimizer_state_dict", o ? std::move(*o) : natural(*opt, ctx));
  }
  const Value* loss = trainer && trainer->is_group ? trainer->attribute("loss") : nullptr;
  if (loss && loss->type == CKPT_VALUE_FLOAT64) d.add("loss", ctx.number(loss->f));
  if (has_content(trainer) && trainer->is_group) d.add("trainer", natural(*trainer, ctx));
  if (has_content(extra) && extra->is_group) d.add("extra", natural(*extra, ctx));
  return d;
}

}  // namespace ckpt_pytorch
