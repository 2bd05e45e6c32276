// One pass of msgpack-cxx's visitor parser over the mapped file, as the tokeniser of the
// shared layout (plugins/common/doc_layout).
#pragma once

#include <doc_dialect.hpp>
#include <doc_text.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ckpt_msgpack {

struct MsgpackDocument {
  ckpt_doc::Tree tree;            // names and strings are views into the file
  std::vector<uint64_t> offsets;  // of each tensor's $data payload, indexed by tensor id
  ckpt_doc::TextArena text;       // names and strings the parser had to copy (unescaped names)
};

// Parses a whole ckpt-msgpack document. Throws ckpt::sdk::Error naming the byte offset and the
// key path on anything that is not exactly the layout.
MsgpackDocument parse_document(std::span<const std::byte> file);

}  // namespace ckpt_msgpack
