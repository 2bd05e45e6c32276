#include "torchscript.hpp"

#include <optional>
#include <string_view>
#include <unordered_map>

namespace ckpt_pytorch {

using namespace ckpt_pickle;
using ckpt::sdk::fail;

namespace {

// A class's declared parameters and buffers, in declaration order, from its code:
//   class Linear(Module):
//     __parameters__ = ["weight", "bias", ]
//     __buffers__ = []
struct Declared {
  std::vector<std::string> parameters, buffers;
};

std::vector<std::string> quoted_names(std::string_view list) {
  std::vector<std::string> out;
  for (size_t at = 0; (at = list.find('"', at)) != std::string_view::npos;) {
    const size_t end = list.find('"', at + 1);
    if (end == std::string_view::npos) break;
    out.emplace_back(list.substr(at + 1, end - at - 1));
    at = end + 1;
  }
  return out;
}

std::optional<Declared> declared_in(std::string_view code, std::string_view cls_name) {
  const std::string head = "class " + std::string(cls_name) + "(";
  size_t at = 0;
  while ((at = code.find(head, at)) != std::string_view::npos && at != 0 && code[at - 1] != '\n') at += head.size();
  if (at == std::string_view::npos) return std::nullopt;
  // The class body runs to the next line that starts a class at the file's top level.
  size_t end = code.find("\nclass ", at + head.size());
  std::string_view body = code.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
  auto list = [&](std::string_view key) -> std::optional<std::vector<std::string>> {
    const std::string line = "\n  " + std::string(key) + " = [";
    const size_t p = body.find(line);
    if (p == std::string_view::npos) return std::nullopt;
    const size_t close = body.find(']', p + line.size());
    if (close == std::string_view::npos) return std::nullopt;
    return quoted_names(body.substr(p + line.size(), close - p - line.size()));
  };
  auto params = list("__parameters__");
  auto buffers = list("__buffers__");
  if (!params || !buffers) return std::nullopt;
  return Declared{std::move(*params), std::move(*buffers)};
}

class Mapper {
 public:
  Mapper(const TorchScriptParts& parts, DocBuilder& b) : parts_(parts), b_(b) {
    for (const auto& [path, text] : parts.code) code_.emplace(path, &text);
  }

  // "__torch__.torch.nn.modules.conv.___torch_mangle_25.Conv2d" is class Conv2d of
  // code/__torch__/torch/nn/modules/conv/___torch_mangle_25.py.
  std::optional<Declared> declared(const std::string& cls) {
    const size_t dot = cls.rfind('.');
    if (dot == std::string::npos) return std::nullopt;
    std::string file = "code/" + cls.substr(0, dot) + ".py";
    for (size_t i = 5; i < file.size() - 3; ++i)
      if (file[i] == '.') file[i] = '/';
    auto it = code_.find(file);
    if (it == code_.end()) return std::nullopt;
    return declared_in(*it->second, std::string_view(cls).substr(dot + 1));
  }

  // A module's tensors under `prefix`, as state_dict() orders them: its parameters, its
  // buffers, then each submodule's. Tensors the class declares as neither, and every other
  // attribute, are kept in `rest`.
  void module(const Record& r, const std::string& prefix, Node& state, Node& rest, int depth) {
    if (depth > kMaxDepth) fail(CKPT_ERR_LIMIT, prefix + ": modules nested deeper than " + std::to_string(kMaxDepth));
    const std::optional<Declared> d = declared(r.cls);
    auto emit = [&](const std::string& name, const Array& a) {
      const std::string n = unique_child_name(state, prefix + name);
      state.add_tensor(n, b_.tensor(a, "model/state/" + n));
    };
    if (d) {
      for (const auto* names : {&d->parameters, &d->buffers})
        for (const std::string& n : *names)
          if (const Array* a = as_array(r.get(n))) emit(n, *a);  // a parameter set to None is absent
    }
    for (const auto& [name, value] : r.attributes) {
      const Array* a = as_array(value);
      const Record* sub = as_record(value);
      if (a && !d) {
        emit(name, *a);
      } else if (sub && sub->cls.rfind("__torch__.", 0) == 0) {
        continue;  // below, after this module's own tensors
      } else if (!a || !is_declared(*d, name)) {
        b_.put(rest, escape_name(prefix + name), value, "extra/torchscript/attributes", depth + 1);
      }
    }
    for (const auto& [name, value] : r.attributes)
      if (const Record* sub = as_record(value); sub && sub->cls.rfind("__torch__.", 0) == 0)
        module(*sub, prefix + name + ".", state, rest, depth + 1);
  }

 private:
  static bool is_declared(const Declared& d, const std::string& name) {
    for (const auto* names : {&d.parameters, &d.buffers})
      for (const std::string& n : *names)
        if (n == name) return true;
    return false;
  }

  const TorchScriptParts& parts_;
  DocBuilder& b_;
  std::unordered_map<std::string, const std::string*> code_;
};

Value strings(const std::vector<std::pair<std::string, std::string>>& pairs, bool first) {
  Value v;
  v.type = CKPT_VALUE_STRING_ARRAY;
  for (const auto& p : pairs) v.strings.push_back(first ? p.first : p.second);
  return v;
}

}  // namespace

Node map_torchscript(const Obj* root, const TorchScriptParts& parts, DocBuilder& b) {
  const Record* top = as_record(root);
  if (!top || top->cls.rfind("__torch__.", 0) != 0)
    fail(CKPT_ERR_FORMAT, std::string("a TorchScript archive whose data.pkl holds a ") +
                              (top ? top->cls : std::string(kind_name(root->kind))) + ", not a module");
  Node doc;
  Node& meta = doc.add_group("meta");
  meta.set("schema", Value::string("ckpt.checkpoint"));
  meta.set("schema_version", Value::integer(1));
  meta.set("producer", Value::string("PyTorch (torch.jit.save)"));
  Node& state = doc.add_group("model").add_group("state");
  Node extra;
  extra.name = "extra";
  Node& ts = extra.add_group("torchscript");
  ts.set("class", Value::string(top->cls));
  Node rest;
  rest.name = "attributes";
  Mapper(parts, b).module(*top, "", state, rest, 0);
  // The source of every class, as the archive holds it, and the user's extra files.
  uint64_t text_bytes = 0;
  for (const auto* list : {&parts.code, &parts.extra_files})
    for (const auto& [name, text] : *list) text_bytes += name.size() + text.size() + 64;
  b.spend(text_bytes, "extra/torchscript");
  ts.set("code_files", strings(parts.code, true));
  ts.set("code", strings(parts.code, false));
  if (!parts.extra_files.empty()) {
    ts.set("extra_files", strings(parts.extra_files, true));
    ts.set("extra_contents", strings(parts.extra_files, false));
  }
  if (const Seq* c = as_seq(parts.constants); c && !c->items.empty()) {
    Node& constants = ts.add_group("constants");
    for (size_t i = 0; i < c->items.size(); ++i) b.put(constants, std::to_string(i), c->items[i], "extra/torchscript/constants", 2);
  }
  if (!rest.attributes.empty() || !rest.children.empty()) ts.add_child(std::move(rest));
  doc.add_child(std::move(extra));
  return doc;
}

}  // namespace ckpt_pytorch
