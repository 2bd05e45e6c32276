// One SAX pass over a ckpt-json text (nlohmann's parser, no DOM) into a Tree.
#pragma once

#include "json_tree.hpp"

#include <string_view>

namespace ckpt::jsonfmt {

// Throws ckpt::sdk::Error (CKPT_ERR_FORMAT or CKPT_ERR_LIMIT) naming the byte offset and the
// document path. Tensors whose "$data" was long enough to skip the lexer keep a view into
// `text`, which must outlive the tree.
Tree parse_document(std::string_view text);

}  // namespace ckpt::jsonfmt
