// What a reader lists: the document's tree, built once at open and replayed to every
// visitor, and per tensor where its bytes are (a strided view over a blob of bytes).
#pragma once

#include <ckpt/sdk_io.hpp>

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>
#include <ckpt/sdk_names.hpp>
#include <ckpt/sdk_value.hpp>

#include <cstring>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ckpt_pickle {

using ckpt::sdk::Value;

// A group or a tensor of the document. Read `attributes` and `children` freely; change them
// only through the methods, which keep the name indexes (lookups are O(1), so a group of n
// members costs O(n) to build even from a hostile file).
struct Node {
  std::string name;
  bool is_group = true;
  std::vector<std::pair<std::string, Value>> attributes;
  std::vector<Node> children;
  uint64_t tensor_id = 0;  // tensors: index into the reader's entries

  const Node* child(std::string_view n) const;
  Node* child(std::string_view n);
  const Value* attribute(std::string_view n) const;
  Node& add_group(std::string n);
  void add_tensor(std::string n, uint64_t id);
  // Adds a group built elsewhere, under its own name.
  Node& add_child(Node n);
  // Sets an attribute, replacing one of the same name in place.
  void set(std::string n, Value v);
  // A name not yet used among the children (or attributes): `n`, else n_2, n_3, ... The search
  // resumes where the last one for `n` stopped, so n clashes cost O(n), not O(n^2).
  std::string unused_child_name(const std::string& n);
  std::string unused_attribute_name(const std::string& n);

 private:
  struct ChildName {
    const Node* node;
    std::string_view operator()(size_t i) const;
  };
  struct AttributeName {
    const Node* node;
    std::string_view operator()(size_t i) const;
  };
  ckpt::sdk::NameIndex child_at_, attribute_at_;  // positions, by name
  std::unordered_map<std::string, uint64_t> child_suffix_, attribute_suffix_;
};

// Where a tensor's bytes come from: a region of the mapped file, or bytes inflated on demand.
class Blob {
 public:
  virtual ~Blob() = default;
  virtual std::span<const std::byte> bytes() = 0;
  virtual uint64_t size() const = 0;
  // True when bytes() is a view into the file that stays valid for the reader's lifetime.
  virtual bool in_file() const { return true; }
  // Copies dst.size() bytes from `offset` in the blob; readers of a file override it with
  // pread, which beats copying out of a fresh mapping.
  virtual void read(uint64_t offset, std::span<std::byte> dst) {
    std::memcpy(dst.data(), bytes().data() + offset, dst.size());
  }
};

// Bytes of the mapped file: `at` is their offset in `file`.
class FileBlob final : public Blob {
 public:
  FileBlob(const ckpt::sdk::MappedFile& file, uint64_t at, uint64_t size) : file_(file), at_(at), size_(size) {}
  std::span<const std::byte> bytes() override { return file_.bytes().subspan(at_, size_); }
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, std::span<std::byte> dst) override;

 private:
  const ckpt::sdk::MappedFile& file_;
  uint64_t at_, size_;
};

struct TensorEntry {
  std::string path;  // in the document, for messages
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // elements
  int64_t offset = 0;            // elements
  bool big_endian = false;
  Blob* blob = nullptr;
  std::vector<std::byte> materialized;  // filled by map() when the view is not dense

  uint64_t nbytes() const;
  bool dense() const;  // C order, native byte order: the bytes can be used in place
  // Copies the view into dst (exactly nbytes), in C order and native byte order.
  void copy_to(std::span<std::byte> dst) const;
  // A pointer to nbytes dense bytes, valid until the entry dies.
  const void* map();
};

// Fails (CKPT_ERR_LIMIT, naming `source`) when the tensors list more bytes than `limits` allow
// over what their distinct blobs hold: views that repeat storage (shared, broadcast, stride 0)
// cost the reader memory and time the file never paid for.
void check_expansion(const std::vector<TensorEntry>& tensors, const ckpt::sdk::ReadLimits& limits, const std::string& source);

// Replays `root` to the visitor. Recursion is bounded by the depth the builders allow.
void list_tree(const Node& root, const ckpt::sdk::Visitor& visitor, const std::vector<TensorEntry>& tensors);

using ckpt::sdk::escape_name;

// Two attribute values are the same: the same type, floats bit for bit.
bool same_value(const Value& a, const Value& b);

}  // namespace ckpt_pickle
