// The writing side of the layout json and msgpack share: the host's calls checked once (one
// root named "", attributes before children and as many of each as announced, names
// non-empty, without '/' and unique in their group, groups no deeper than kMaxGroupDepth,
// tensors whose bytes match dtype and shape), and the order the document is written in: the
// root's $format and $version, a group's $attrs before its children, each attribute and
// tensor under its name. A format supplies the primitives that put each part into its bytes.
#pragma once

#include <ckpt/sdk.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ckpt_doc {

class LayoutWriter : public ckpt::sdk::Writer {
 public:
  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) final;
  void end_group() final;
  void attribute(std::string_view name, const ckpt_value& value) final;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) final;
  void finish() final;

 protected:
  // `format` names the format in messages.
  explicit LayoutWriter(const char* format) : format_(format) {}

  // Groups open now, the root 1.
  size_t depth() const { return stack_.size(); }
  // "a/b/name" from the root, for messages.
  std::string path_of(std::string_view name) const;

  // ---- what the format writes, in document order ----
  // The root object and its $format and $version; `members` counts what follows them
  // ($attrs if any, then the children).
  virtual void open_root(uint64_t members) = 0;
  // A child group under `name` (the document name: the format escapes it), holding `members`.
  virtual void open_group(std::string_view name, uint64_t members) = 0;
  // "$attrs" and its object of `n` attributes; closed after the last one.
  virtual void open_attrs(uint64_t n) = 0;
  virtual void write_attribute(std::string_view name, const ckpt_value& value, const std::string& where) = 0;
  virtual void close_attrs() = 0;
  // A tensor under `name`: $dtype, $shape, then the format's payload keys. Dtype and byte
  // count are checked already.
  virtual void write_tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data,
                            const std::string& where) = 0;
  // The group that opened last ends; `empty` when it held nothing.
  virtual void close_group(bool empty) = 0;
  virtual void close_document() = 0;
  // Text the format cannot store as it is (json: not UTF-8) fails here.
  virtual void check_text(std::string_view, const std::string& /*where*/) const {}

 private:
  struct Open {
    std::string name;
    uint64_t attributes_left;
    uint64_t children_left;
    bool empty;
    // The host's document cannot hold duplicates, but a streaming caller could send them, and
    // an object with a repeated key is a file no reader accepts.
    std::unordered_set<std::string> attribute_names;
    std::unordered_set<std::string> child_names;
  };

  Open& current(const char* event);
  std::string where() const;
  void check_name(std::string_view name, const char* what) const;
  void claim_child(std::string_view name, const char* event);

  const char* format_;
  std::vector<Open> stack_;
  bool root_done_ = false;
  bool finished_ = false;
};

}  // namespace ckpt_doc
