#include "engine_memory.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace ckpt::train::detail {

constexpr size_t kAlign = 64;

std::shared_ptr<Storage> aligned_storage(size_t nbytes) {
  size_t cap = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (cap == 0) cap = kAlign;
  void* p = std::aligned_alloc(kAlign, cap);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, cap);
  std::shared_ptr<void> keep(p, std::free);
  return std::make_shared<Storage>(static_cast<const std::byte*>(p), nbytes, true,
                                   StorageKind::owned, std::move(keep));
}


memory::dims to_dims(const Shape& shape) { return memory::dims(shape.begin(), shape.end()); }
Shape to_shape(const memory::dims& dims) { return Shape(dims.begin(), dims.end()); }

memory::desc plain_desc(const Shape& shape) {
  // Strides instead of a tag so that any rank works.
  memory::dims strides(shape.size());
  memory::dim s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return memory::desc(to_dims(shape), memory::data_type::f32, strides);
}

memory::desc any_desc(const Shape& shape) {
  return memory::desc(to_dims(shape), memory::data_type::f32, memory::format_tag::any);
}

bool is_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlign == 0; }


Buffer::Buffer(const memory::desc& md, const dnnl::engine& engine)
    : storage_(aligned_storage(md.get_size())), md_(md),
      mem_(md, engine, storage_->mutable_data()) {}

void Converter::prepare(const memory::desc& from, const memory::desc& to, Engine& engine) {
  if (reorder_ && from == from_ && to == to_) return;
  from_ = from;
  to_ = to;
  reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine.engine(), from, engine.engine(), to));
}

const memory& Converter::operator()(const memory& m, const memory::desc& want, Engine& engine) {
  memory::desc have = m.get_desc();
  if (have == want) return m;
  if (out_.empty() || !(out_.desc() == want)) out_ = Buffer(want, engine.engine());
  into(m, out_.mem(), engine);
  return out_.mem();
}

void Converter::into(const memory& m, const memory& out, Engine& engine) {
  prepare(m.get_desc(), out.get_desc(), engine);
  args_[DNNL_ARG_FROM] = m;
  args_[DNNL_ARG_TO] = out;
  reorder_.execute(engine.stream(), args_);
}

}  // namespace ckpt::train::detail

namespace ckpt::train {
Tensor aligned_tensor(Shape shape) {
  size_t n = static_cast<size_t>(numel(shape)) * sizeof(float);
  return Tensor(DType::f32, std::move(shape), detail::aligned_storage(n));
}
}  // namespace ckpt::train
