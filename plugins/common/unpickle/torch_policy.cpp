#include "policies.hpp"

namespace ckpt_pickle {

namespace {

struct StorageName {
  const char* name;
  uint32_t dtype;
};

constexpr StorageName kStorages[] = {
    {"FloatStorage", CKPT_DTYPE_F32},  {"DoubleStorage", CKPT_DTYPE_F64}, {"HalfStorage", CKPT_DTYPE_F16},
    {"BFloat16Storage", CKPT_DTYPE_BF16}, {"CharStorage", CKPT_DTYPE_I8}, {"ByteStorage", CKPT_DTYPE_U8},
    {"ShortStorage", CKPT_DTYPE_I16},  {"IntStorage", CKPT_DTYPE_I32},    {"LongStorage", CKPT_DTYPE_I64},
    {"BoolStorage", CKPT_DTYPE_BOOL},
    // torch 2.1 (float8) and 2.3 (uint16 to uint64) name their storages so.
    {"UInt16Storage", CKPT_DTYPE_U16}, {"UInt32Storage", CKPT_DTYPE_U32},  {"UInt64Storage", CKPT_DTYPE_U64},
    {"Float8_e4m3fnStorage", CKPT_DTYPE_F8_E4M3FN}, {"Float8_e5m2Storage", CKPT_DTYPE_F8_E5M2},
    {"ComplexFloatStorage", CKPT_DTYPE_C64}, {"ComplexDoubleStorage", CKPT_DTYPE_C128},
};

bool is(const Obj* o, std::string_view module, std::string_view name) {
  const Global* g = as_global(o);
  return g && g->module == module && g->name == name;
}

int64_t integer(const Obj* o, const char* what, const Input& in, size_t at) {
  const Scalar* s = as_scalar(o);
  if (!s || s->kind != Kind::integer) in.fail(CKPT_ERR_FORMAT, at, std::string(what) + " is not an int");
  return s->i;
}

std::vector<int64_t> ints(const Obj* o, const char* what, const Input& in, size_t at) {
  const Seq* s = as_seq(o);
  if (!s) in.fail(CKPT_ERR_FORMAT, at, std::string(what) + " is not a tuple");
  std::vector<int64_t> out;
  for (const Obj* x : s->items) out.push_back(integer(x, what, in, at));
  return out;
}

const Seq& args_of(const Obj* args, size_t min, size_t max, const char* fn, const Input& in, size_t at) {
  const Seq* s = as_seq(args);
  if (!s || s->items.size() < min || s->items.size() > max)
    in.fail(CKPT_ERR_FORMAT, at, std::string(fn) + " called with " + std::to_string(s ? s->items.size() : 0) + " arguments");
  return *s;
}

// torch >= 2.0 passes a tensor's serialization metadata to _rebuild_tensor_v2 as a 7th
// argument, a dict of str to bool, and on load sets the bit each key names (torch's
// setTensorMetadata: 'neg' negates the values, 'conj' conjugates them; any other key fails).
// None and {} set nothing. What it holds is kept, as Python prints it, for the document
// mapping to refuse the tensor by name (DocBuilder::tensor): ckpt reads the stored bytes as
// they are, which with a bit set are not the values torch gives.
void read_tensor_metadata(Array& t, const Obj* md, const Input& in, size_t at) {
  t.torch_metadata_arg = true;
  if (md->kind == Kind::none) return;
  const Dict* d = as_dict(md);
  if (!d) in.fail(CKPT_ERR_FORMAT, at, std::string("a tensor whose metadata (_rebuild_tensor_v2's 7th argument) is a ") +
                                           kind_name(md->kind) + ", not a dict");
  std::string shown;
  for (const auto& [k, v] : d->entries) {
    const Text* key = as_text(k);
    const Scalar* flag = as_scalar(v);
    if (!key || key->kind != Kind::string || !flag || flag->kind != Kind::boolean)
      in.fail(CKPT_ERR_FORMAT, at, "a tensor whose metadata (_rebuild_tensor_v2's 7th argument) is not a dict of str to bool");
    t.torch_metadata_unknown_key |= key->str() != "neg" && key->str() != "conj";
    if (shown.size() > 200) {
      shown += ", ...";
      break;
    }
    shown += (shown.empty() ? "'" : ", '") + std::string(key->str().substr(0, 64)) + "': " + (flag->b ? "True" : "False");
  }
  if (!d->entries.empty()) t.torch_metadata = "{" + shown + "}";
}

Obj* rebuild_tensor(Arena& arena, const Seq& a, const Input& in, size_t at) {
  const Storage* st = as_storage(a.items[0]);
  if (!st) in.fail(CKPT_ERR_FORMAT, at, "a tensor rebuilt from a " + std::string(kind_name(a.items[0]->kind)) + ", not a storage");
  auto* t = arena.make<Array>();
  t->dtype = st->dtype;
  t->base = a.items[0];
  t->offset = integer(a.items[1], "the storage offset", in, at);
  t->shape = ints(a.items[2], "the tensor's size", in, at);
  t->strides = ints(a.items[3], "the tensor's stride", in, at);
  t->where = in.where(at);
  if (a.items.size() >= 6) {  // _rebuild_tensor_v2: (storage, offset, size, stride, requires_grad, hooks[, metadata])
    const Scalar* rg = as_scalar(a.items[4]);
    if (!rg || rg->kind != Kind::boolean) in.fail(CKPT_ERR_FORMAT, at, "a tensor whose requires_grad is not a bool");
    t->requires_grad = rg->b;
  }
  if (a.items.size() == 7) read_tensor_metadata(*t, a.items[6], in, at);
  if (t->shape.size() != t->strides.size())
    in.fail(CKPT_ERR_FORMAT, at, "size and stride have different lengths");
  check_array_bounds(*t, st->numel, in, at);
  return t;
}

// (data, requires_grad, backward_hooks[, state]): nn.Parameter's arguments, whichever way
// torch pickled it. requires_grad defaults to True, as Parameter's does.
Obj* as_parameter(Arena& arena, const Seq& args, const Input& in, size_t at) {
  Obj* data = args.items[0];
  const Array* t = as_array(data);
  if (!t || t->numpy) in.fail(CKPT_ERR_FORMAT, at, "a Parameter of a " + std::string(kind_name(data->kind)) + ", not a tensor");
  auto* p = arena.make<Array>(*t);
  p->parameter = true;
  p->requires_grad = true;
  if (args.items.size() > 1) {
    const Scalar* rg = as_scalar(args.items[1]);
    if (!rg || rg->kind != Kind::boolean) in.fail(CKPT_ERR_FORMAT, at, "a Parameter whose requires_grad is not a bool");
    p->requires_grad = rg->b;
  }
  return p;
}

}  // namespace

uint32_t torch_storage_dtype(std::string_view storage_class) {
  for (const auto& s : kStorages)
    if (storage_class == s.name) return s.dtype;
  return 0;
}

const char* torch_storage_name(uint32_t dtype) {
  for (const auto& s : kStorages)
    if (s.dtype == dtype) return s.name;
  return nullptr;
}

void check_array_bounds(const Array& a, uint64_t base_elements, const Input& in, size_t at) {
  if (a.offset < 0) in.fail(CKPT_ERR_FORMAT, at, "a negative storage offset");
  // The furthest element the view reaches; an empty view reaches none.
  unsigned __int128 last = static_cast<uint64_t>(a.offset);
  bool empty = false;
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (a.shape[i] < 0) in.fail(CKPT_ERR_FORMAT, at, "a negative dimension " + std::to_string(a.shape[i]));
    if (a.strides[i] < 0) in.fail(CKPT_ERR_UNSUPPORTED, at, "a negative stride");
    if (a.shape[i] == 0) empty = true;
    else last += static_cast<unsigned __int128>(a.shape[i] - 1) * static_cast<uint64_t>(a.strides[i]);
    if (last > (static_cast<unsigned __int128>(1) << 62)) in.fail(CKPT_ERR_LIMIT, at, "a tensor view too large");
  }
  if (!empty && last >= base_elements)
    in.fail(CKPT_ERR_FORMAT, at,
            "a tensor view reaches element " + std::to_string(static_cast<uint64_t>(last)) + " of a storage of " +
                std::to_string(base_elements));
}

namespace {

bool torch_global(const std::string& module, const std::string& name) {
  return (module == "collections" && name == "OrderedDict") ||
         (module == "torch._utils" &&
          (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor" || name == "_rebuild_parameter" ||
           name == "_rebuild_parameter_with_state")) ||
         (module == "torch.nn.parameter" && name == "Parameter") || (module == "torch" && torch_storage_dtype(name));
}

// A class whose instance in a .pt file means a pickled model or torch object ckpt cannot hold.
bool model_class(const Global& g) {
  return g.module == "__main__" || g.module == "torch" || g.module.starts_with("torch.");
}

[[noreturn]] void refuse_model(const Input& in, size_t at, const Global& g) {
  if (g.module == "__main__" || g.module.starts_with("torch.nn"))
    refuse(in, at, g.module, g.name,
           "a .pt file may hold state dicts, tensors, NumPy values, plain data and plain objects, not a pickled model "
           "(torch.save(model) pickles the model's class; save model.state_dict() instead)");
  // torch objects whose state holds code: torch 1.13's OneCycleLR keeps a bound method in its
  // state_dict(), which pickles the scheduler itself (torch's weights_only loader refuses it too).
  refuse(in, at, g.module, g.name,
         "an instance of a torch class, which torch.load would rebuild by running its code; a .pt file may hold "
         "state dicts, tensors, NumPy values, plain data and plain objects");
}

}  // namespace

Obj* TorchPolicy::global(Arena& arena, const std::string& module, const std::string& name, Input& in, size_t at) {
  if (torch_global(module, name)) return arena.make<Global>(module, name);
  if (module == "torch" && name.size() > 7 && name.ends_with("Storage"))
    in.fail(CKPT_ERR_UNSUPPORTED, at, "torch." + name + ": ckpt holds no such dtype");
  // Naming anything else is harmless (it is never imported): what the pickle does with it is
  // decided when it calls or instantiates it.
  return numpy_.global(arena, module, name, in, at);
}

Obj* TorchPolicy::reduce(Arena& arena, Obj* callable, Obj* args, Input& in, size_t at) {
  const Global* g = as_global(callable);
  if (!g) in.fail(CKPT_ERR_FORMAT, at, std::string("REDUCE calls a ") + kind_name(callable->kind));
  if (is(g, "torch._utils", "_rebuild_tensor_v2")) return rebuild_tensor(arena, args_of(args, 6, 7, "_rebuild_tensor_v2", in, at), in, at);
  if (is(g, "torch._utils", "_rebuild_tensor")) return rebuild_tensor(arena, args_of(args, 4, 4, "_rebuild_tensor", in, at), in, at);
  if (is(g, "torch._utils", "_rebuild_parameter"))
    return as_parameter(arena, args_of(args, 3, 3, "_rebuild_parameter", in, at), in, at);
  if (is(g, "torch._utils", "_rebuild_parameter_with_state"))
    return as_parameter(arena, args_of(args, 4, 4, "_rebuild_parameter_with_state", in, at), in, at);
  if (is(g, "torch.nn.parameter", "Parameter"))
    return as_parameter(arena, args_of(args, 1, 2, "Parameter", in, at), in, at);
  // TorchScript's pickler types its lists (build_intlist([1, 2])) and tags values with their
  // type (restore_type_tag(value, "Dict[str, int]")): each gives back its first argument.
  if (g->module == "torch.jit._pickle") {
    for (const char* f : {"build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "build_genericlist"})
      if (g->name == f) return args_of(args, 1, 1, f, in, at).items[0];
    if (g->name == "restore_type_tag") return args_of(args, 2, 2, "restore_type_tag", in, at).items[0];
  }
  if (is(g, "copyreg", "_reconstructor") || is(g, "copy_reg", "_reconstructor")) {
    const Seq* a = as_seq(args);
    if (const Global* cls = a && !a->items.empty() ? as_global(a->items[0]) : nullptr; cls && model_class(*cls))
      refuse_model(in, at, *cls);
  }
  if (g->module == "torch" || g->module.starts_with("torch."))
    refuse(in, at, g->module, g->name, "not one of the tensor rebuilders a .pt file may use");
  return numpy_.reduce(arena, callable, args, in, at);
}

Obj* TorchPolicy::newobj(Arena& arena, Obj* cls, Obj* args, Input& in, size_t at) {
  if (is(cls, "torch.nn.parameter", "Parameter"))
    return as_parameter(arena, args_of(args, 1, 2, "Parameter", in, at), in, at);
  const Global* g = as_global(cls);
  if (g && model_class(*g)) refuse_model(in, at, *g);
  return numpy_.newobj(arena, cls, args, in, at);
}

Obj* TorchPolicy::build(Arena& arena, Obj* inst, Obj* state, Input& in, size_t at) {
  // torch runs Tensor.__setstate__ (and its weights_only loader set_()) with the state: a BUILD
  // on a tensor can swap its data for another storage's, so it is refused, not ignored.
  if (const Array* a = as_array(inst); a && !a->numpy)
    in.fail(CKPT_ERR_FORMAT, at, "BUILD on a tensor (torch would set its data from the state)");
  return numpy_.build(arena, inst, state, in, at);
}

Obj* TorchPolicy::persistent_load(Arena& arena, Obj* pid, Input& in, size_t at) {
  // ('storage', torch.FloatStorage, key, location, numel)
  const Seq* t = as_seq(pid);
  const Text* tag = t && !t->items.empty() ? as_text(t->items[0]) : nullptr;
  if (!tag || tag->str() != "storage")
    in.fail(CKPT_ERR_FORMAT, at, "a persistent id that is not ('storage', type, key, location, size)");
  if (t->items.size() != 5) in.fail(CKPT_ERR_FORMAT, at, "a storage id of " + std::to_string(t->items.size()) + " items (expected 5)");
  const Global* type = as_global(t->items[1]);
  const Text* key = as_text(t->items[2]);
  if (!type || !key) in.fail(CKPT_ERR_FORMAT, at, "a storage id without a storage type and key");
  const Text* location = as_text(t->items[3]);
  if (!location || location->kind != Kind::string) in.fail(CKPT_ERR_FORMAT, at, "a storage id whose location is not a str");
  auto* s = arena.make<Storage>();
  s->dtype = torch_storage_dtype(type->name);
  if (type->module != "torch" || !s->dtype) in.fail(CKPT_ERR_UNSUPPORTED, at, "a storage of type " + type->full());
  s->type_name = type->full();
  s->key = std::string(key->str());
  s->location = std::string(location->str());
  // torch.load restores a storage on the device its location names, and a 'meta' storage
  // holds no data: torch gives tensors without values (and torch.save writes no bytes for
  // them), where ckpt would read whatever the archive holds under the key. Other devices
  // ('cuda:0', 'mps') are read from the archive's bytes, as torch.load(map_location='cpu') does.
  if (s->location == "meta" || s->location.starts_with("meta:"))
    in.fail(CKPT_ERR_UNSUPPORTED, at,
            "storage '" + s->key.substr(0, 64) + "' is on device '" + s->location.substr(0, 64) +
                "', which holds no data: torch.load gives tensors without values, so the file holds no weights "
                "to read (save the tensors from a device that holds their data)");
  const int64_t n = integer(t->items[4], "the storage's size", in, at);
  if (n < 0) in.fail(CKPT_ERR_FORMAT, at, "a storage of negative size");
  s->numel = static_cast<uint64_t>(n);
  // torch keeps the first storage it loads under a key and hands it out for every later id of
  // that key, whatever their type and size say: a key has one type and size, or two readings.
  auto [it, fresh] = storages_.try_emplace(s->key, s->dtype, s->numel);
  if (!fresh && (it->second.first != s->dtype || it->second.second != s->numel))
    in.fail(CKPT_ERR_FORMAT, at, "storage '" + s->key + "' is used as two types or sizes (torch reads the first for both)");
  return s;
}

}  // namespace ckpt_pickle
