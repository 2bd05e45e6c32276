#include "torchscript.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace ckpt_pytorch {

using namespace ckpt_pickle;
using ckpt::sdk::fail;

namespace {

// A class's declared parameters and buffers, from its code as torch prints it:
//   class Linear(Module):
//     __parameters__ = ["weight", "bias", ]
//     __buffers__ = []
// Only that printed form is read; anything else (another quote, a comment, other indentation)
// is refused rather than guessed at, since torch.jit.load reads the code as Python.
struct Declared {
  bool module = false;  // the class is a Module (an object of a scripted class is not)
  std::vector<std::string> parameters, buffers;
};

std::optional<std::vector<std::string>> printed_names(std::string_view list) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < list.size()) {
    if (list[at] != '"') return std::nullopt;
    const size_t end = list.find('"', at + 1);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view name = list.substr(at + 1, end - at - 1);
    if (name.empty()) return std::nullopt;
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
    out.emplace_back(name);
    if (list.substr(end + 1, 2) != ", ") return std::nullopt;
    at = end + 3;
  }
  return out;
}

// nullopt: the class is not in this file; a Declared with module false: a class that is not a
// Module; fails when a Module's declarations are not in torch's printed form.
std::optional<Declared> declared_in(std::string_view code, std::string_view cls_name, const std::string& file) {
  const std::string head = "class " + std::string(cls_name);
  size_t at = 0;
  for (;; at += head.size()) {
    at = code.find(head, at);
    if (at == std::string_view::npos) return std::nullopt;
    const char next = at + head.size() < code.size() ? code[at + head.size()] : '\0';
    if ((at == 0 || code[at - 1] == '\n') && (next == '(' || next == ':')) break;
  }
  const size_t line_end = code.find('\n', at);
  const std::string_view line = code.substr(at, line_end == std::string_view::npos ? std::string_view::npos : line_end - at);
  Declared d;
  d.module = line == head + "(Module):";
  if (!d.module) return d;
  auto bad = [&](const std::string& what) -> std::nullopt_t {
    ckpt::sdk::fail(CKPT_ERR_FORMAT, file + ": class " + std::string(cls_name) + " " + what +
                                         " (ckpt reads the declarations torch prints, and refuses to guess at others)");
  };
  auto list = [&](size_t from, std::string_view key) -> std::vector<std::string> {
    const std::string prefix = "\n  " + std::string(key) + " = [";
    if (code.compare(from, prefix.size(), prefix) != 0) bad("does not declare " + std::string(key) + " where torch prints it");
    const size_t close = code.find("]\n", from + prefix.size());
    if (close == std::string_view::npos) bad("has an unterminated " + std::string(key));
    auto names = printed_names(code.substr(from + prefix.size(), close - from - prefix.size()));
    if (!names) bad("declares " + std::string(key) + " in a form torch does not print");
    return *names;
  };
  d.parameters = list(line_end, "__parameters__");
  const size_t next = code.find('\n', line_end + 1);
  d.buffers = list(next, "__buffers__");
  // torch orders a module's parameters and buffers by its attribute slots, which the printed
  // class annotates in order ("  weight : Tensor"), not by the lists above.
  std::unordered_map<std::string, size_t> slot;
  for (size_t at_line = code.find('\n', next + 1); at_line != std::string_view::npos && code.compare(at_line, 3, "\n  ") == 0;) {
    const size_t end = code.find('\n', at_line + 1);
    const std::string_view l = code.substr(at_line + 3, end == std::string_view::npos ? std::string_view::npos : end - at_line - 3);
    if (l.starts_with("def ") || l.starts_with(" ")) break;
    if (const size_t colon = l.find(" : "); colon != std::string_view::npos) slot.emplace(std::string(l.substr(0, colon)), slot.size());
    at_line = end;
  }
  auto by_slot = [&](std::vector<std::string>& names) {
    std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
      auto ia = slot.find(a), ib = slot.find(b);
      return (ia == slot.end() ? SIZE_MAX : ia->second) < (ib == slot.end() ? SIZE_MAX : ib->second);
    });
  };
  by_slot(d.parameters);
  by_slot(d.buffers);
  std::vector<std::string> all = d.parameters;
  all.insert(all.end(), d.buffers.begin(), d.buffers.end());
  std::sort(all.begin(), all.end());
  if (std::adjacent_find(all.begin(), all.end()) != all.end()) bad("declares one name twice");
  return d;
}

class Mapper {
 public:
  Mapper(const TorchScriptParts& parts, DocBuilder& b) : b_(b) {
    for (const auto& [path, text] : parts.code) code_.emplace(path, &text);
  }

  // "__torch__.torch.nn.modules.conv.___torch_mangle_25.Conv2d" is class Conv2d of
  // code/__torch__/torch/nn/modules/conv/___torch_mangle_25.py. Looked up once per class.
  const Declared& declared(const std::string& cls) {
    if (auto hit = declared_.find(cls); hit != declared_.end()) return hit->second;
    const size_t dot = cls.rfind('.');
    std::string file = "code/" + (dot == std::string::npos ? cls : cls.substr(0, dot)) + ".py";
    for (size_t i = 5; i < file.size() - 3; ++i)
      if (file[i] == '.') file[i] = '/';
    auto it = code_.find(file);
    std::optional<Declared> d;
    if (it != code_.end()) d = declared_in(*it->second, std::string_view(cls).substr(dot + 1), file);
    if (!d) fail(CKPT_ERR_FORMAT, "class " + cls + " of data.pkl has no code in " + file + " (torch.jit.load refuses such an archive)");
    return declared_.emplace(cls, std::move(*d)).first->second;
  }

  // A module's tensors under `prefix`, as state_dict() orders them: its parameters, its
  // buffers, then each submodule's. Tensors the class declares as neither, and every other
  // attribute, are kept in `rest`.
  void module(const Record& r, const std::string& prefix, Node& state, Node& rest, int depth) {
    if (depth > kMaxDepth) fail(CKPT_ERR_LIMIT, prefix + ": modules nested deeper than " + std::to_string(kMaxDepth));
    // A module the pickle shares is visited at every path that reaches it, as state_dict()
    // does: each visit counts against the document's budget (60 levels of a module shared
    // twice would be 2^60 visits).
    b_.spend(256 + prefix.size(), "model/state/" + prefix);
    const Declared& d = declared(r.cls);
    auto emit = [&](const std::string& name, const Array& a) {
      if (a.numpy) fail(CKPT_ERR_FORMAT, r.cls + ": parameter or buffer '" + name + "' is a NumPy array, not a tensor");
      const std::string n = unique_child_name(state, prefix + name);
      state.add_tensor(n, b_.tensor(a, "model/state/" + n));
    };
    for (const auto* names : {&d.parameters, &d.buffers})
      for (const std::string& n : *names) {
        const Obj* v = r.get(n);
        if (v && v->kind != Kind::none && !as_array(v))  // a parameter set to None is absent
          fail(CKPT_ERR_FORMAT, r.cls + ": '" + n + "' is declared a parameter or buffer but holds a " + kind_name(v->kind));
        if (const Array* a = as_array(v)) emit(n, *a);
      }
    for (const auto& [name, value] : r.attributes) {
      if (submodule(value) || is_declared(d, name)) continue;  // submodules below, after this one's tensors
      b_.put(rest, escape_name(prefix + name), value, "extra/torchscript/attributes", depth + 1);
    }
    for (const auto& [name, value] : r.attributes)
      if (submodule(value)) module(*as_record(value), prefix + name + ".", state, rest, depth + 1);
  }

 private:
  // A Module among the attributes (an object of a scripted class that is not a Module is kept
  // as an attribute, as state_dict() leaves it out).
  bool submodule(const Obj* v) {
    const Record* sub = as_record(v);
    return sub && sub->cls.rfind("__torch__.", 0) == 0 && declared(sub->cls).module;
  }

  static bool is_declared(const Declared& d, const std::string& name) {
    for (const auto* names : {&d.parameters, &d.buffers})
      for (const std::string& n : *names)
        if (n == name) return true;
    return false;
  }

  DocBuilder& b_;
  std::unordered_map<std::string, const std::string*> code_;
  std::unordered_map<std::string, Declared> declared_;
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
  Mapper mapper(parts, b);
  mapper.module(*top, "", state, rest, 0);
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
