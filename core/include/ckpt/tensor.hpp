// A tensor is a dtype, a shape and a view over storage that is owned, borrowed or mapped.
// Copying a Tensor copies the view, never the bytes.
#pragma once

#include <ckpt/dtype.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

using Shape = std::vector<int64_t>;

uint64_t numel(const Shape& shape);
std::string shape_string(const Shape& shape);

enum class StorageKind { owned, borrowed, mapped };

// Bytes that a tensor views. Mapped storage keeps its mapping (and the reader it came from)
// alive through `keepalive`.
class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t nbytes);  // owned, zero-filled
  static std::shared_ptr<Storage> allocate_uninitialized(size_t nbytes);
  static std::shared_ptr<Storage> borrow(std::span<std::byte> bytes);
  static std::shared_ptr<Storage> borrow(std::span<const std::byte> bytes);
  static std::shared_ptr<Storage> mapped(std::span<const std::byte> bytes,
                                         std::shared_ptr<const void> keepalive);

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // Null for read-only (mapped or const-borrowed) storage.
  std::byte* mutable_data() const { return writable_ ? const_cast<std::byte*>(data_) : nullptr; }
  StorageKind kind() const { return kind_; }

  Storage(const std::byte* data, size_t size, bool writable, StorageKind kind,
          std::shared_ptr<const void> keepalive)
      : data_(data), size_(size), writable_(writable), kind_(kind),
        keepalive_(std::move(keepalive)) {}

 private:
  const std::byte* data_;
  size_t size_;
  bool writable_;
  StorageKind kind_;
  std::shared_ptr<const void> keepalive_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape, std::shared_ptr<Storage> storage, size_t offset = 0);

  // Owned and zero-filled.
  static Tensor zeros(DType dtype, Shape shape);
  static Tensor empty(DType dtype, Shape shape);  // owned, uninitialised
  // A view over memory the caller keeps alive.
  static Tensor borrow(DType dtype, Shape shape, void* data);
  static Tensor borrow(DType dtype, Shape shape, const void* data);
  template <class T>
  static Tensor from(DType dtype, Shape shape, const std::vector<T>& values);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  uint64_t numel() const { return ckpt::numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(storage_bytes(dtype_, numel())); }
  bool defined() const { return storage_ != nullptr; }
  StorageKind storage_kind() const { return storage_->kind(); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Throws UsageError for a tensor without storage (listed, not read).
  std::span<const std::byte> bytes() const;
  // Throws UsageError on read-only storage.
  std::span<std::byte> mutable_bytes() const;

  template <class T>
  std::span<const T> data() const {
    return {reinterpret_cast<const T*>(bytes().data()), static_cast<size_t>(numel())};
  }
  template <class T>
  std::span<T> mutable_data() const {
    return {reinterpret_cast<T*>(mutable_bytes().data()), static_cast<size_t>(numel())};
  }

  // An owned deep copy.
  Tensor clone() const;
  // The same bytes viewed with another shape of the same element count.
  Tensor reshape(Shape shape) const;
  // True when dtype, shape and bytes are equal (NaNs with equal bits are equal).
  bool bit_equal(const Tensor& other) const;

 private:
  DType dtype_ = DType::f32;
  Shape shape_;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
};

template <class T>
Tensor Tensor::from(DType dtype, Shape shape, const std::vector<T>& values) {
  Tensor t = empty(dtype, std::move(shape));
  auto out = t.mutable_bytes();
  if (!values.empty()) std::memcpy(out.data(), values.data(), std::min(out.size(), values.size() * sizeof(T)));
  return t;
}

}  // namespace ckpt
