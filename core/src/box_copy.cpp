#include "box_copy.hpp"

#include <ckpt/errors.hpp>

#include <cstring>
#include <vector>

namespace ckpt::detail {

void check_box(const Shape& shape, std::span<const int64_t> start, std::span<const int64_t> count,
               const std::string& what) {
  if (start.size() != shape.size() || count.size() != shape.size())
    throw UsageError(what + ": a slice of a tensor of shape " + shape_string(shape) + " needs " +
                     std::to_string(shape.size()) + " start and count values, got " +
                     std::to_string(start.size()) + " and " + std::to_string(count.size()));
  for (size_t i = 0; i < shape.size(); ++i)
    if (start[i] < 0 || count[i] < 0 || start[i] > shape[i] || count[i] > shape[i] - start[i])
      throw UsageError(what + ": slice " + std::to_string(start[i]) + ":" +
                       std::to_string(start[i] + count[i]) + " of dimension " + std::to_string(i) +
                       " is outside its size " + std::to_string(shape[i]));
}

void copy_box(std::span<const std::byte> src, const Shape& shape, size_t item,
              std::span<const int64_t> start, std::span<const int64_t> count, std::span<std::byte> dst) {
  const std::vector<int64_t> origin(count.size(), 0);
  copy_between(src, shape, start, dst, Shape(count.begin(), count.end()), origin, count, item);
}

void copy_between(std::span<const std::byte> src, const Shape& src_shape, std::span<const int64_t> src_start,
                  std::span<std::byte> dst, const Shape& dst_shape, std::span<const int64_t> dst_start,
                  std::span<const int64_t> count, size_t item) {
  const size_t r = src_shape.size();
  if (r == 0) {
    std::memcpy(dst.data(), src.data(), item);
    return;
  }
  for (int64_t c : count)
    if (c == 0) return;
  // Element strides of both tensors; the box's last dimension is one contiguous run in each.
  std::vector<size_t> from(r, 1), to(r, 1);
  for (size_t i = r - 1; i > 0; --i) {
    from[i - 1] = from[i] * static_cast<size_t>(src_shape[i]);
    to[i - 1] = to[i] * static_cast<size_t>(dst_shape[i]);
  }
  const size_t run = static_cast<size_t>(count[r - 1]) * item;
  std::vector<int64_t> idx(r, 0);  // position inside the box, over the leading r-1 dimensions
  while (true) {
    size_t a = 0, b = 0;
    for (size_t i = 0; i < r; ++i) {
      a += static_cast<size_t>(src_start[i] + idx[i]) * from[i];
      b += static_cast<size_t>(dst_start[i] + idx[i]) * to[i];
    }
    std::memcpy(dst.data() + b * item, src.data() + a * item, run);
    if (r == 1) return;
    size_t d = r - 1;
    while (true) {
      --d;
      if (++idx[d] < count[d]) break;
      idx[d] = 0;
      if (d == 0) return;
    }
  }
}

}  // namespace ckpt::detail
