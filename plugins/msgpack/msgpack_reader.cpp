#include "msgpack_reader.hpp"

#include <cstring>

namespace ckpt_msgpack {

using ckpt::sdk::fail;

MsgpackReader::MsgpackReader(const std::string& path)
    : file_(path), tree_(parse_tree(file_.bytes())) {}

void MsgpackReader::list(const ckpt::sdk::Visitor& visitor) { list_group(visitor, tree_.groups[0]); }

// Recursion is bounded: the parser refuses documents nested deeper than kMaxDepth.
void MsgpackReader::list_group(const ckpt::sdk::Visitor& visitor, const GroupEntry& group) {
  visitor.begin_group(std::string(group.name));
  for (const AttributeEntry& a : group.attributes) visitor.attribute(std::string(a.name), a.view());
  for (const ChildRef& c : group.children) {
    if (c.is_tensor) {
      const TensorEntry& t = tree_.tensors[c.index];
      visitor.tensor(std::string(t.name), t.dtype, t.shape, t.nbytes, c.index);
    } else {
      list_group(visitor, tree_.groups[c.index]);
    }
  }
  visitor.end_group();
}

const TensorEntry& MsgpackReader::entry(uint64_t id) const {
  if (id >= tree_.tensors.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " in '" +
                                 file_.path() + "' (it holds " +
                                 std::to_string(tree_.tensors.size()) + ")");
  return tree_.tensors[id];
}

void MsgpackReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  const TensorEntry& t = entry(id);
  if (dst.size() != t.nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(t.name) + "' has " +
                                        std::to_string(t.nbytes) + " bytes, the buffer " +
                                        std::to_string(dst.size()));
  // Small tensors sit next to headers the parse has already paged in; a syscall would cost
  // more than the copy. See sdk::MappedFile (ckpt/sdk_io.hpp) for why large ones are read, not copied.
  constexpr uint64_t small = 64 << 10;
  if (t.nbytes <= small)
    std::memcpy(dst.data(), file_.data() + t.offset, t.nbytes);
  else
    file_.read_at(t.offset, dst);
}

const void* MsgpackReader::map_tensor(uint64_t id) { return file_.data() + entry(id).offset; }

}  // namespace ckpt_msgpack
