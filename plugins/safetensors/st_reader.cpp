#include "st_reader.hpp"

#include <cstring>

namespace ckpt_safetensors {

using ckpt::sdk::fail;

SafetensorsReader::SafetensorsReader(const std::string& path, const ckpt::sdk::ReadLimits& limits)
    : file_(path), header_(parse_header(file_.bytes())), listing_(build_tree(header_, limits)) {}

void SafetensorsReader::list(const ckpt::sdk::Visitor& visitor) { listing_.tree.list(visitor); }

const TensorEntry& SafetensorsReader::entry(uint64_t id) const {
  const size_t n = header_.tensors.size();
  if (id >= n + listing_.alias_targets.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " in '" + file_.path() + "' (it holds " +
                                 std::to_string(n + listing_.alias_targets.size()) + ")");
  // An alias reads the bytes of the tensor it shares them with.
  return header_.tensors[id < n ? id : listing_.alias_targets[id - n]];
}

void SafetensorsReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  const TensorEntry& t = entry(id);
  const uint64_t nbytes = t.end - t.begin;
  if (dst.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor " + quote_name(t.key) + " has " + std::to_string(nbytes) +
                                        " bytes, the buffer " + std::to_string(dst.size()));
  // Small tensors sit next to the header the parse has already paged in; a syscall would cost
  // more than the copy. See sdk::MappedFile (ckpt/sdk_io.hpp) for why large ones are read, not copied.
  constexpr uint64_t small = 64 << 10;
  if (nbytes == 0) return;
  if (nbytes <= small)
    std::memcpy(dst.data(), file_.data() + header_.data_start + t.begin, nbytes);
  else
    file_.read_at(header_.data_start + t.begin, dst);
}

void SafetensorsReader::read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                                   std::span<std::byte> dst) {
  const TensorEntry& t = entry(id);
  const std::vector<int64_t>& shape = listing_.tree.tensors[listing_.slot[id]].shape;  // moved out of t
  const size_t rank = shape.size();
  const uint64_t item = ckpt::sdk::dtype_size(t.dtype);
  uint64_t nbytes = item;
  bool inside = start.size() == rank && count.size() == rank;
  for (size_t d = 0; inside && d < rank; ++d) {
    const auto dim = static_cast<uint64_t>(shape[d]);
    inside = start[d] <= dim && count[d] <= dim - start[d];
    nbytes *= count[d];  // at most the tensor's size, which fits
  }
  if (!inside || dst.size() != nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, "a box outside tensor " + quote_name(t.key) + " or a buffer of the wrong size");
  if (nbytes == 0) return;
  const std::byte* src = file_.data() + header_.data_start + t.begin;
  if (rank == 0) {
    std::memcpy(dst.data(), src, item);
    return;
  }
  // Rows along the last dimension are contiguous in the file and in dst.
  const uint64_t row = count[rank - 1] * item;
  std::vector<uint64_t> at(rank - 1, 0);  // the row's index in the box, outer dimensions
  for (std::byte* out = dst.data();; out += row) {
    uint64_t offset = 0;
    for (size_t d = 0; d < rank; ++d)
      offset = offset * static_cast<uint64_t>(shape[d]) + start[d] + (d + 1 < rank ? at[d] : 0);
    std::memcpy(out, src + offset * item, row);
    size_t d = rank - 1;
    while (d > 0 && ++at[d - 1] == count[d - 1]) at[--d] = 0;
    if (d == 0) return;
  }
}

const void* SafetensorsReader::map_tensor(uint64_t id) {
  return file_.data() + header_.data_start + entry(id).begin;
}

}  // namespace ckpt_safetensors
