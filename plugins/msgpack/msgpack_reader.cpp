#include "msgpack_reader.hpp"

#include <cstring>

namespace ckpt_msgpack {

using ckpt::sdk::fail;

MsgpackReader::MsgpackReader(const std::string& path)
    : file_(path), doc_(parse_document(file_.bytes())) {}

void MsgpackReader::list(const ckpt::sdk::Visitor& visitor) { doc_.tree.list(visitor); }

const ckpt_doc::Tree::Tensor& MsgpackReader::entry(uint64_t id) const {
  if (id >= doc_.tree.tensors.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " in '" +
                                 file_.path() + "' (it holds " +
                                 std::to_string(doc_.tree.tensors.size()) + ")");
  return doc_.tree.tensors[id];
}

void MsgpackReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  const ckpt_doc::Tree::Tensor& t = entry(id);
  if (dst.size() != t.nbytes)
    fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(t.name) + "' has " +
                                        std::to_string(t.nbytes) + " bytes, the buffer " +
                                        std::to_string(dst.size()));
  // Small tensors sit next to headers the parse has already paged in; a syscall would cost
  // more than the copy. See sdk::MappedFile (ckpt/sdk_io.hpp) for why large ones are read, not copied.
  constexpr uint64_t small = 64 << 10;
  if (t.nbytes <= small)
    std::memcpy(dst.data(), file_.data() + doc_.offsets[id], t.nbytes);
  else
    file_.read_at(doc_.offsets[id], dst);
}

const void* MsgpackReader::map_tensor(uint64_t id) {
  entry(id);  // refuses an unknown id
  return file_.data() + doc_.offsets[id];
}

}  // namespace ckpt_msgpack
