// oneDNN memory as the layers use it: 64-byte aligned buffers (oneDNN's kernels may pick a
// different code path for unaligned data, which could change results between runs), plain
// C-order descriptors, and cached reorders between layouts.
#pragma once

#include <ckpt/tensor.hpp>
#include <ckpt/train/engine.hpp>
#include <ckpt/train/model.hpp>

#include <dnnl.hpp>

#include <memory>

namespace ckpt::train::detail {

using dnnl::memory;

memory::dims to_dims(const Shape& shape);
Shape to_shape(const memory::dims& dims);
// f32 in C order (a, ab, abc, abcd ...).
memory::desc plain_desc(const Shape& shape);
// A descriptor of the same dimensions that lets a primitive choose the layout.
memory::desc any_desc(const Shape& shape);
bool is_aligned(const void* p);
// Zero-filled, 64-byte aligned bytes.
std::shared_ptr<Storage> aligned_storage(size_t nbytes);

// Aligned bytes for one oneDNN memory (blocked layouts may be larger than the element count).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const memory::desc& md, const dnnl::engine& engine);
  bool empty() const { return !storage_; }
  const memory& mem() const { return mem_; }
  const memory::desc& desc() const { return md_; }
  // A plain view; only meaningful when desc() is plain.
  Tensor tensor(Shape shape) const { return Tensor(DType::f32, std::move(shape), storage_); }

 private:
  std::shared_ptr<Storage> storage_;
  memory::desc md_;
  memory mem_;
};

// Gives a memory in a wanted layout: the input itself when it already has it, otherwise a copy
// made by a reorder that is created once and reused while the layouts stay the same.
class Converter {
 public:
  const memory& operator()(const memory& m, const memory::desc& want, Engine& engine);
  // Reorders `m` into `out` (whose layout differs), reusing the primitive.
  void into(const memory& m, const memory& out, Engine& engine);

 private:
  void prepare(const memory::desc& from, const memory::desc& to, Engine& engine);
  memory::desc from_, to_;
  dnnl::reorder reorder_;
  Buffer out_;
  std::unordered_map<int, memory> args_;
};

// A memory that views someone else's bytes; the handle is set again before every use because
// parameter and input tensors may be replaced between steps.
inline memory view(const memory::desc& md, Engine& engine, const void* data) {
  return memory(md, engine.engine(), const_cast<void*>(data));
}

}  // namespace ckpt::train::detail
