// Copying a box (a hyperslab: start[i] <= index < start[i] + count[i] along every dimension) out
// of a C-order tensor, for slice reads of formats that cannot read part of a tensor themselves.
#pragma once

#include <ckpt/tensor.hpp>

#include <cstddef>
#include <span>
#include <string>

namespace ckpt::detail {

// Throws UsageError naming `what` unless the box has the tensor's rank and lies inside `shape`.
void check_box(const Shape& shape, std::span<const int64_t> start, std::span<const int64_t> count,
               const std::string& what);

// Copies the box of `src` (a tensor of `shape` with `item`-byte elements) into `dst`, C order.
void copy_box(std::span<const std::byte> src, const Shape& shape, size_t item,
              std::span<const int64_t> start, std::span<const int64_t> count, std::span<std::byte> dst);

// Copies a box of `count` elements per dimension from `src` (a tensor of `src_shape`) at
// `src_start` into `dst` (a tensor of `dst_shape`) at `dst_start`: copy_box is the case of a
// `dst` the box's size; assembling a tensor from chunks (sharded checkpoints) the other one.
void copy_between(std::span<const std::byte> src, const Shape& src_shape, std::span<const int64_t> src_start,
                  std::span<std::byte> dst, const Shape& dst_shape, std::span<const int64_t> dst_start,
                  std::span<const int64_t> count, size_t item);

}  // namespace ckpt::detail
