// The document: what crosses the plugin boundary. Nested groups holding typed attributes and
// tensors, in insertion order. Names are non-empty UTF-8 without '/' or NUL; paths join names
// with '/'.
#pragma once

#include <ckpt/sdk_names.hpp>
#include <ckpt/tensor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <optional>
#include <variant>
#include <vector>

namespace ckpt {

// The order matches ckpt_value_type - 1.
using Value = std::variant<bool, int64_t, double, std::string, std::vector<bool>,
                           std::vector<int64_t>, std::vector<double>, std::vector<std::string>>;

enum class ValueType { boolean, int64, float64, string, bool_array, int64_array, float64_array,
                       string_array };
inline ValueType value_type(const Value& v) { return static_cast<ValueType>(v.index()); }
std::string_view value_type_name(ValueType t);
bool is_array(ValueType t);
// Compact human-readable rendering (JSON-like), used by inspect and diff.
std::string value_to_string(const Value& v, size_t max_elements = 16);
// Bitwise equality (doubles compared by bits, so NaN == NaN and 0.0 != -0.0).
bool value_equal(const Value& a, const Value& b);

// Throws UsageError when a name is empty or holds '/' or NUL.
void check_name(std::string_view name);

class Group;

struct Attribute {
  std::string name;
  Value value;
};

// A child of a group: a tensor or a group.
struct Node {
  std::string name;
  std::variant<Tensor, std::unique_ptr<Group>> item;

  bool is_tensor() const { return item.index() == 0; }
  bool is_group() const { return item.index() == 1; }
  const Tensor& tensor() const { return std::get<0>(item); }
  Tensor& tensor() { return std::get<0>(item); }
  const Group& group() const { return *std::get<1>(item); }
  Group& group() { return *std::get<1>(item); }
};

class Group {
 public:
  Group() = default;
  Group(const Group& other);
  Group& operator=(const Group& other);
  Group(Group&&) noexcept = default;
  Group& operator=(Group&&) noexcept = default;

  // Attributes: set replaces a value of the same name in place.
  Group& set(std::string_view name, Value value);
  Group& set(std::string_view name, const char* value) { return set(name, std::string(value)); }
  // Any arithmetic type: bools stay bools, integers become int64, the rest float64.
  template <class T>
    requires std::is_arithmetic_v<T>
  Group& set(std::string_view name, T value) {
    if constexpr (std::is_same_v<T, bool>)
      return set(name, Value(value));
    else if constexpr (std::is_integral_v<T>)
      return set(name, Value(static_cast<int64_t>(value)));
    else
      return set(name, Value(static_cast<double>(value)));
  }
  const Value* attribute(std::string_view name) const;
  bool erase_attribute(std::string_view name);
  const std::vector<Attribute>& attributes() const { return attributes_; }

  // Children. add_* throws UsageError if the name is taken.
  Tensor& add_tensor(std::string_view name, Tensor t);
  // Replaces a tensor of the same name in place, or appends.
  Tensor& set_tensor(std::string_view name, Tensor t);
  Group& add_group(std::string_view name);
  // The child group `name`, created if missing; throws if `name` is a tensor.
  Group& group(std::string_view name);
  const Group* find_group(std::string_view name) const;
  Group* find_group(std::string_view name);
  const Tensor* find_tensor(std::string_view name) const;
  Tensor* find_tensor(std::string_view name);
  const Node* find(std::string_view name) const;
  bool erase(std::string_view name);
  const std::vector<Node>& children() const { return children_; }
  // Members may be changed in place (a tensor's storage, a group's contents), never renamed:
  // names are indexed.
  std::span<Node> children() { return children_; }

  // "a/b/c" lookups relative to this group.
  const Group* find_group_path(std::string_view path) const;
  const Tensor* find_tensor_path(std::string_view path) const;

  bool empty() const { return attributes_.empty() && children_.empty(); }
  size_t tensor_count() const;  // recursive
  uint64_t tensor_bytes() const;  // recursive

  // Visits every tensor, depth first in order, with its path from this group.
  void for_each_tensor(const std::function<void(const std::string& path, const Tensor&)>& f,
                       const std::string& prefix = "") const;

 private:
  // Name -> position, so that lookups cost O(1) however many members a group has (a real
  // mixture-of-experts state dict has 90k+ tensors in one group).
  std::optional<size_t> child_position(std::string_view name) const;
  std::optional<size_t> attribute_position(std::string_view name) const;

  std::vector<Attribute> attributes_;
  std::vector<Node> children_;
  sdk::NameIndex attribute_at_;
  sdk::NameIndex child_at_;
};

using Document = Group;

std::string join_path(std::string_view a, std::string_view b);

}  // namespace ckpt
