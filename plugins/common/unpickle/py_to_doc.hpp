// Python data as a document: dicts and objects become groups, arrays and tensors become
// tensors, numbers, strings and lists of them become attributes (docs/formats/pickle.md).
#pragma once

#include "doc_tree.hpp"
#include "py_object.hpp"

#include <ckpt/sdk_limits.hpp>

#include <functional>
#include <optional>

namespace ckpt_pickle {

// Bounds how deep the mapping follows nested containers (and so any cycle a memo can build).
inline constexpr int kMaxDepth = 512;

// An array's bytes that the pickle spelled out (latin-1 text under protocol 2, or a
// protocol 3+ bytes object inside a .pt file's data.pkl) live in the arena.
class TextBlob final : public Blob {
 public:
  explicit TextBlob(const Text& t) : t_(t) {}
  std::span<const std::byte> bytes() override { return std::as_bytes(std::span(t_.str().data(), t_.str().size())); }
  uint64_t size() const override { return t_.str().size(); }
  // Arena bytes live as long as the reader, as a mapping's would.
  bool in_file() const override { return true; }

 private:
  const Text& t_;
};

class DocBuilder {
 public:
  // `resolve` gives the blob an array's base lives in (and checks the view fits it).
  // `max_bytes` bounds what the document the mapping emits costs (ReadLimits::
  // document_bytes_for): shared objects are emitted at every place they appear, so a pickle of a
  // few hundred bytes that nests a memoised list in itself 30 times would otherwise emit 2^30
  // nodes.
  DocBuilder(std::vector<TensorEntry>& tensors, std::function<Blob*(const Array&)> resolve, uint64_t max_bytes)
      : tensors_(tensors), resolve_(std::move(resolve)), bytes_left_(max_bytes), max_bytes_(max_bytes) {}

  // Puts `value` into `group` under `key`: an attribute, a tensor or a group. None is left out
  // (a document has no null) and its path kept in nones(), so that a reader can name it.
  void put(Node& group, const std::string& key, const Obj* value, const std::string& path, int depth);
  // The members of a dict, a list or tuple (named 0, 1, ...) or an object's attributes.
  void fill(Node& group, const Obj* container, const std::string& path, int depth);
  // Counts `bytes` against the document's bound; fails naming `path` past it.
  void spend(uint64_t bytes, const std::string& path);
  // A tensor entry for an array; returns its id.
  uint64_t tensor(const Array& a, const std::string& path);
  TensorEntry& entry(uint64_t id) { return tensors_.at(id); }
  // The attribute a scalar, a string or a list of them maps to, if it maps to one.
  static std::optional<Value> attribute(const Obj* value);
  // The name a dict key takes in a document.
  static std::string key_name(const Obj* key, int depth = 0);
  static std::string key_text(const Obj* key, int depth);
  // The paths of the None values left out, in the order met.
  const std::vector<std::string>& nones() const { return nones_; }

 private:
  // What a reader and the host hold for a member, roughly: the node, its name, its index slots.
  static constexpr uint64_t kGroupCost = 512, kTensorCost = 256, kAttributeCost = 192;
  std::vector<TensorEntry>& tensors_;
  std::function<Blob*(const Array&)> resolve_;
  uint64_t bytes_left_;
  uint64_t max_bytes_;
  std::vector<std::string> nones_;
};

// A name not yet used among `group`'s children: `name`, else name_2, name_3, ...
std::string unique_child_name(Node& group, const std::string& name);

}  // namespace ckpt_pickle
