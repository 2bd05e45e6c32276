// The non-tensor part of a ckpt document as JSON: the value of the "ckpt.document" entry of
// __metadata__ (docs/formats/safetensors.md, "The document entry").
//
//   {"format": "ckpt-safetensors", "version": 1, "root": group}
//   group  = {["group": name,] "attributes": [[name, type, value], ...], "members": [member, ...]}
//   member = {"tensor": name} | group
//
// Names are values rather than object keys, so a duplicate is an error we report rather than an
// entry a JSON parser silently drops. The tensors themselves stay in the header, under their
// '/'-joined paths; a member only says where in the tree each one goes.
#pragma once

#include <ckpt/sdk_limits.hpp>
#include <ckpt/sdk_skeleton.hpp>
#include <ckpt/sdk_tree.hpp>

#include "st_header.hpp"
#include "st_layout.hpp"

#include <ckpt/plugin_abi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_safetensors {

// `s` as a JSON string (quoted and escaped). JSON text is Unicode: a string that is not UTF-8
// is CKPT_ERR_UNSUPPORTED, naming `where`, rather than changed.
std::string json_string(std::string_view s, const std::string& where);

// The document entry's layout in the SDK's skeleton codec, which writes and parses it: keys in
// the order above, non-finite floats by name, strings only as UTF-8 text, tensors by name alone;
// a group's lists may be absent, a key twice or an unknown one at the top is refused, and the
// entry holds at most kMaxDocumentValues JSON values (its DOM's memory).
inline constexpr ckpt::sdk::SkeletonKeys kDocumentKeys{
    .format = kDocumentFormat, .version = kDocumentVersion, .attributes = "attributes", .children = "members",
    .location = "", .name_in_child = true, .floats_as_bits = false, .omit_empty = false, .max_depth = kMaxDepth,
    .keys_in_order = true, .named_floats = true, .utf8_only = true, .name_only_tensors = true,
    .lists_optional = true, .strict_keys = true, .max_values = kMaxDocumentValues, .levels_per_group = 2};

// The document entry of `tree` (a writer's record of the document). `open_groups`: how many
// groups are still open, for the text as far as a writer has streamed, which ends after a
// tensor.
std::string document_text(const ckpt::sdk::Tree& tree, size_t open_groups = 0);

// Fails (CKPT_ERR_LIMIT) when the document entry of `tree` would hold more than
// kMaxDocumentValues JSON values as the reader counts them (every value and container, not
// keys): the writer checks the entry it would make, so that ckpt never writes a file its reader
// refuses.
void check_document_values(const ckpt::sdk::Tree& tree);

// The document a reader reports. Names and strings are views into the header, which must
// outlive it, or kept by the tree. A tensor's id is its index in the header's tensors, or,
// for an alias (kAliasesKey), the header's tensor count plus its index in alias_targets.
struct Listing {
  ckpt::sdk::ViewTree tree;
  std::vector<size_t> alias_targets;  // the header index of the tensor holding each alias's bytes
  std::vector<size_t> slot;           // id -> index in tree.tensors
};

// Builds the tree a reader reports. With no document entry, the file is a plain one: the root
// holds the __metadata__ entries as string attributes and every tensor goes where its
// '/'-separated name says. With one, the entry gives the groups, attributes and order, and the
// header the tensors. Throws ckpt::sdk::Error naming the place.
// `limits` bounds what aliases (kAliasesKey) may list beyond the data the file holds. The
// tensors' shapes move from `header` into the tree.
Listing build_tree(Header& header, const ckpt::sdk::ReadLimits& limits);

}  // namespace ckpt_safetensors
