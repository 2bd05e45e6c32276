#include <ckpt/errors.hpp>
#include <ckpt/tensor.hpp>

#include "env_switch.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <memory>

namespace ckpt {

uint64_t numel(const Shape& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {
// Bytes for a shape, refusing negative dimensions and sizes that overflow before allocating.
size_t checked_nbytes(DType dtype, const Shape& shape) {
  for (int64_t d : shape)
    if (d < 0) throw UsageError("tensor shape " + shape_string(shape) + " has a negative dimension");
  // A block dtype's rows are whole blocks: its size is rows times blocks per row.
  const bool blocks = is_block(dtype);
  if (blocks && (shape.empty() || shape.back() % static_cast<int64_t>(block_elements(dtype)) != 0))
    throw UsageError("a " + std::string(name(dtype)) + " tensor of shape " + shape_string(shape) +
                     ": its last dimension must be a multiple of " + std::to_string(block_elements(dtype)) +
                     " (its rows are whole blocks)");
  // Zero dimensions are left out of the bound: an empty tensor must not hide dimensions whose
  // strides or element counts overflow int64 wherever they are computed.
  unsigned __int128 n = blocks ? block_bytes(dtype) : itemsize(dtype);
  bool empty = false;
  for (size_t k = 0; k < shape.size(); ++k) {
    const int64_t d = blocks && k + 1 == shape.size() ? shape[k] / static_cast<int64_t>(block_elements(dtype)) : shape[k];
    if (d == 0) {
      empty = true;
      continue;
    }
    n *= static_cast<uint64_t>(d);
    if (n > (static_cast<unsigned __int128>(1) << 62)) throw UsageError("tensor shape " + shape_string(shape) + " is too large");
  }
  return empty ? 0 : static_cast<size_t>(n);
}

// Large owned buffers are 2 MiB-aligned, madvise(MADV_HUGEPAGE)d and populated in one call
// before anyone writes them, as NumPy does for its arrays: a fresh 4 KiB page costs a fault
// (on a VM a host fault too), and a 1 GiB load into new memory ran at 1.2-1.7 GB/s with 4 KiB
// pages against 3.2-4.1 GB/s hinted and populated, on this machine with its page cache full of
// clean or dirty files (benchmarks/README.md, "Huge pages"). CKPT_MADVISE_HUGEPAGE=0 turns the
// hint off, for a machine where compacting memory for huge pages costs more than it saves.
bool huge_pages_wanted() {
  static const bool wanted = detail::env_switch_on("CKPT_MADVISE_HUGEPAGE");
  return wanted;
}

void prepare_large(void* p, size_t n) {
#ifdef MADV_HUGEPAGE
  if (!huge_pages_wanted()) return;
  // Failures only lose the speed-up: the kernel may lack THP or MADV_POPULATE_WRITE (5.14).
  ::madvise(p, n, MADV_HUGEPAGE);
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;
#endif
  ::madvise(p, n, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)n;
#endif
}

// Owned storage keeps its buffer in the keepalive so that all kinds share one class.
std::shared_ptr<Storage> owned(size_t n, bool zero) {
  constexpr size_t kHuge = size_t(2) << 20;
  std::shared_ptr<std::byte> buf;
  if (n >= 2 * kHuge) {
    size_t rounded = (n + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, rounded);
    if (!p) throw std::bad_alloc();
    prepare_large(p, rounded);
    if (zero) std::memset(p, 0, n);
    buf.reset(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
  } else {
    // 64-byte aligned, so compute libraries (oneDNN) can use the buffer without copying it.
    size_t rounded = (std::max<size_t>(n, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
    if (zero) std::memset(p, 0, n);
    buf.reset(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
  }
  const std::byte* p = buf.get();
  return std::make_shared<Storage>(p, n, true, StorageKind::owned, std::shared_ptr<const void>(buf, buf.get()));
}
}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t n) { return owned(n, true); }
std::shared_ptr<Storage> Storage::allocate_uninitialized(size_t n) { return owned(n, false); }
std::shared_ptr<Storage> Storage::borrow(std::span<std::byte> b) {
  return std::make_shared<Storage>(b.data(), b.size(), true, StorageKind::borrowed, nullptr);
}
std::shared_ptr<Storage> Storage::borrow(std::span<const std::byte> b) {
  return std::make_shared<Storage>(b.data(), b.size(), false, StorageKind::borrowed, nullptr);
}
std::shared_ptr<Storage> Storage::mapped(std::span<const std::byte> b,
                                         std::shared_ptr<const void> keepalive) {
  return std::make_shared<Storage>(b.data(), b.size(), false, StorageKind::mapped,
                                   std::move(keepalive));
}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<Storage> storage, size_t offset)
    : dtype_(dtype), shape_(std::move(shape)), storage_(std::move(storage)), offset_(offset) {
  for (int64_t d : shape_)
    if (d < 0) throw UsageError("tensor shape " + shape_string(shape_) + " has a negative dimension");
  if (storage_ && offset_ + nbytes() > storage_->bytes().size())
    throw UsageError("tensor of shape " + shape_string(shape_) + " " + std::string(name(dtype_)) +
                     " needs " + std::to_string(nbytes()) + " bytes but its storage has " +
                     std::to_string(storage_->bytes().size() - std::min(offset_, storage_->bytes().size())));
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  size_t n = checked_nbytes(dtype, shape);
  return Tensor(dtype, std::move(shape), Storage::allocate(n));
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  size_t n = checked_nbytes(dtype, shape);
  return Tensor(dtype, std::move(shape), Storage::allocate_uninitialized(n));
}

Tensor Tensor::borrow(DType dtype, Shape shape, void* data) {
  size_t n = checked_nbytes(dtype, shape);
  return Tensor(dtype, std::move(shape), Storage::borrow(std::span<std::byte>(static_cast<std::byte*>(data), n)));
}

Tensor Tensor::borrow(DType dtype, Shape shape, const void* data) {
  size_t n = checked_nbytes(dtype, shape);
  return Tensor(dtype, std::move(shape),
                Storage::borrow(std::span<const std::byte>(static_cast<const std::byte*>(data), n)));
}

std::span<const std::byte> Tensor::bytes() const {
  if (!storage_) throw UsageError("tensor has no data (it was listed, not read)");
  return storage_->bytes().subspan(offset_, nbytes());
}

std::span<std::byte> Tensor::mutable_bytes() const {
  std::byte* p = storage_ ? storage_->mutable_data() : nullptr;
  if (!p) throw UsageError("tensor storage is read-only (mapped or borrowed const); clone() it first");
  return {p + offset_, nbytes()};
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype_, shape_);
  if (nbytes()) std::memcpy(t.mutable_bytes().data(), bytes().data(), nbytes());
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (ckpt::numel(shape) != numel())
    throw UsageError("cannot reshape " + shape_string(shape_) + " to " + shape_string(shape));
  return Tensor(dtype_, std::move(shape), storage_, offset_);
}

bool Tensor::bit_equal(const Tensor& o) const {
  if (dtype_ != o.dtype_ || shape_ != o.shape_) return false;
  auto a = bytes(), b = o.bytes();
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace ckpt
