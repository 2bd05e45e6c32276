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

#include "st_header.hpp"
#include "st_tree.hpp"

#include <ckpt/plugin_abi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt_safetensors {

// `s` as a JSON string (quoted and escaped). JSON text is Unicode: a string that is not UTF-8
// is CKPT_ERR_UNSUPPORTED, naming `where`, rather than changed.
std::string json_string(std::string_view s, const std::string& where);

// Writes the document entry while the host streams the document, in the same order.
class DocumentText {
 public:
  void begin_group(std::string_view name, uint64_t n_attributes);  // "" for the root
  // `where` names the attribute for errors (a string that is not UTF-8 cannot be JSON).
  void attribute(std::string_view name, const ckpt_value& value, const std::string& where);
  void tensor(std::string_view name, const std::string& where);
  void end_group();
  const std::string& text() const { return text_; }

 private:
  struct Open {
    uint64_t attributes_left;
    bool first_attribute = true;
    bool members_open = false;
    bool first_member = true;
  };
  void open_members();
  void member_separator();

  std::string text_;
  std::vector<Open> stack_;
};

// Fails (CKPT_ERR_LIMIT) when the document entry `text` holds more than kMaxDocumentValues JSON
// values as the reader counts them (every value and container, not keys): the writer checks the
// entry it made, so that ckpt never writes a file its reader refuses.
void check_document_values(std::string_view text);

// Builds the tree a reader reports. With no document entry, the file is a plain one: the root
// holds the __metadata__ entries as string attributes and every tensor goes where its
// '/'-separated name says. With one, the entry gives the groups, attributes and order, and the
// header the tensors. Throws ckpt::sdk::Error naming the place.
// `limits` bounds what aliases (kAliasesKey) may list beyond the data the file holds.
Tree build_tree(const Header& header, const ckpt::sdk::ReadLimits& limits);

}  // namespace ckpt_safetensors
