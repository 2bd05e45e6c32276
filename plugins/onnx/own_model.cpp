#include "own_model.hpp"

#include "onnx_layout.hpp"
#include "text.hpp"

namespace ckpt_onnx {

std::vector<std::pair<std::string, std::string>> own_metadata(const Document& doc, const std::string& graph_note,
                                                              const std::string& external_note) {
  const Tree& tree = doc.tree;
  std::vector<std::pair<std::string, std::string>> entries;
  // meta's attributes one by one, for tools that show metadata_props; ckpt reads them back
  // from the document entry.
  const size_t meta = tree.find_group(0, "meta");
  if (meta != SIZE_MAX) {
    std::vector<std::pair<size_t, std::string>> todo{{meta, std::string(kMetaKeyPrefix)}};
    while (!todo.empty()) {
      auto [g, prefix] = todo.back();
      todo.pop_back();
      for (const Tree::Attribute& a : tree.groups[g].attributes)
        if (valid_utf8(a.name)) entries.emplace_back(prefix + a.name, value_as_text(a.value));
      const auto& children = tree.groups[g].children;
      for (auto it = children.rbegin(); it != children.rend(); ++it)
        if (!it->is_tensor && valid_utf8(tree.groups[it->index].name))
          todo.emplace_back(it->index, prefix + tree.groups[it->index].name + "/");
    }
  }
  entries.emplace_back(std::string(kGraphKey), graph_note);
  if (!external_note.empty()) entries.emplace_back(std::string(kExternalKey), external_note);
  entries.emplace_back(std::string(kDocumentKey), document_to_json(doc));
  return entries;
}

}  // namespace ckpt_onnx
