// Text from a file as the layout checks, shows and keeps it: which names the readers refuse
// (the writers refuse the same, so no file they write is one the readers reject), how a
// string from a file appears in a message (it must not drive the terminal that prints it),
// and where strings the tree cannot view in the file live.
#pragma once

#include <ckpt/sdk_tree.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt_doc {

enum class NameFault : uint8_t { empty, slash, nul, utf8 };

// Why a group, tensor or attribute name cannot be in a document; nothing when it can.
std::optional<NameFault> name_fault(std::string_view name);
// "is empty", "contains '/'", ...: completes "child name 'x' ...".
const char* name_fault_text(NameFault f);

// `s` in `quote` quotes for a message: control characters (C0, DEL, C1), the quote, '\\' and
// bytes that are not part of well-formed UTF-8 as \xNN, cut after `limit` bytes of `s` on a
// character boundary ("..." then).
std::string quote_text(std::string_view s, char quote, size_t limit);
// The same escaping, unquoted and uncut.
void append_escaped(std::string& out, std::string_view s);

// The SDK's arena (ckpt/sdk_tree.hpp), which a ViewTree keeps its own strings in.
using TextArena = ckpt::sdk::TextArena;

}  // namespace ckpt_doc
