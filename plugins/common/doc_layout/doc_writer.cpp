#include "doc_writer.hpp"

#include "doc_keys.hpp"
#include "doc_text.hpp"

namespace ckpt_doc {

using ckpt::sdk::fail;

namespace {

// Names come from other formats' files: shown escaped, as the readers show them.
std::string shown(std::string_view name) { return quote_text(name, '\'', 80); }

}  // namespace

std::string LayoutWriter::path_of(std::string_view name) const {
  std::string p;
  for (const Open& g : stack_) {
    if (g.name.empty()) continue;
    append_escaped(p, g.name);
    p += '/';
  }
  append_escaped(p, name);
  return p;
}

std::string LayoutWriter::where() const {
  const std::string path = path_of("");
  return path.empty() ? "the root group" : "group '" + path.substr(0, path.size() - 1) + "'";
}

LayoutWriter::Open& LayoutWriter::current(const char* event) {
  if (stack_.empty())
    fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " outside any group (the root group is " +
                                        (root_done_ ? "already closed)" : "not open yet)"));
  return stack_.back();
}

void LayoutWriter::check_name(std::string_view name, const char* what) const {
  // The readers' own check: a name they refuse must not reach a file.
  if (const std::optional<NameFault> fault = name_fault(name)) {
    const bool layout = *fault == NameFault::empty || *fault == NameFault::slash;
    fail(layout ? CKPT_ERR_INVALID_ARGUMENT : CKPT_ERR_UNSUPPORTED,
         "invalid " + std::string(what) + " name " + shown(name) + " in " + where() + ": the name " +
             name_fault_text(*fault) + (layout ? " (names are non-empty and hold no '/')"
                                               : " (the " + std::string(format_) + " format's names are UTF-8 without NUL)"));
  }
  check_text(name, std::string(what) + " name '" + path_of(name) + "'");
}

void LayoutWriter::claim_child(std::string_view name, const char* event) {
  Open& g = current(event);
  check_name(name, event);
  if (g.attributes_left != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " " + shown(name) + " in " + where() + " before its " +
                                        std::to_string(g.attributes_left) + " announced attributes");
  if (g.children_left == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         std::string(event) + " " + shown(name) + " in " + where() + " beyond its announced children");
  if (!g.child_names.emplace(name).second)
    fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate child " + shown(name) + " in " + where());
  --g.children_left;
  g.empty = false;
}

void LayoutWriter::begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group after finish");
  const uint64_t members = (n_attributes > 0 ? 1 : 0) + n_children;
  if (stack_.empty()) {
    if (root_done_) fail(CKPT_ERR_INVALID_ARGUMENT, "a second root group");
    if (!name.empty())
      fail(CKPT_ERR_INVALID_ARGUMENT, "the root group must be named \"\", got " + shown(name));
    open_root(members);
  } else {
    claim_child(name, "group");
    if (stack_.size() > kMaxGroupDepth)
      fail(CKPT_ERR_UNSUPPORTED, "group '" + path_of(name) + "': the " + format_ + " format nests at most " +
                                     std::to_string(kMaxGroupDepth) + " groups");
    open_group(name, members);
  }
  stack_.push_back({std::string(name), n_attributes, n_children, n_attributes == 0 && n_children == 0, {}, {}});
  if (n_attributes > 0) open_attrs(n_attributes);
}

void LayoutWriter::end_group() {
  Open& g = current("end_group");
  if (g.attributes_left != 0 || g.children_left != 0)
    fail(CKPT_ERR_INVALID_ARGUMENT, "end of " + where() + " with " + std::to_string(g.attributes_left) +
                                        " attributes and " + std::to_string(g.children_left) +
                                        " children still announced");
  const bool empty = g.empty;
  stack_.pop_back();
  close_group(empty);
  if (stack_.empty()) root_done_ = true;
}

void LayoutWriter::attribute(std::string_view name, const ckpt_value& value) {
  Open& g = current("attribute");
  check_name(name, "attribute");
  if (g.attributes_left == 0)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         "attribute " + shown(name) + " in " + where() + " beyond its announced attributes");
  if (!g.attribute_names.emplace(name).second)
    fail(CKPT_ERR_INVALID_ARGUMENT, "duplicate attribute " + shown(name) + " in " + where());
  --g.attributes_left;
  g.empty = false;
  write_attribute(name, value, "attribute '" + path_of(name) + "'");
  if (g.attributes_left == 0) close_attrs();
}

void LayoutWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  const std::string what = "tensor '" + path_of(info.name) + "'";
  claim_child(info.name, "tensor");
  const size_t item = ckpt::sdk::dtype_size(info.dtype);
  if (item == 0 || !ckpt::sdk::dtype_name(info.dtype))
    fail(CKPT_ERR_INVALID_ARGUMENT, what + ": unknown dtype " + std::to_string(info.dtype));
  const uint64_t nbytes = ckpt::sdk::checked_nbytes(info.shape, item, what);
  if (nbytes != info.nbytes || data.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT,
         what + ": " + std::to_string(data.size()) + " bytes given, shape needs " + std::to_string(nbytes));
  write_tensor(info, data, what);
}

void LayoutWriter::finish() {
  if (finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish called twice");
  if (!root_done_ || !stack_.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "finish before the root group was closed");
  close_document();
  finished_ = true;
}

}  // namespace ckpt_doc
