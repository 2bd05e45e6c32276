// One SAX pass over a ckpt-json text: nlohmann's parser (no DOM) tokenises, the shared layout
// (plugins/common/doc_layout) checks and builds the tree.
#pragma once

#include "json_dialect.hpp"

#include <string_view>
#include <vector>

namespace ckpt_json {

struct JsonDocument {
  ckpt_doc::Tree tree;
  std::vector<TensorBytes> bytes;  // indexed by tensor id
  ckpt_doc::TextArena text;        // the names and strings the tree views
};

// Throws ckpt::sdk::Error (CKPT_ERR_FORMAT, _LIMIT or _UNSUPPORTED) naming the byte offset and
// the document path. Tensors whose "$data" was long enough to skip the lexer keep a view into
// `text`, which must outlive the document; so may names and strings.
JsonDocument parse_document(std::string_view text);

}  // namespace ckpt_json
