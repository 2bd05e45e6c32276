// Reads a ckpt MessagePack file through one read-only mapping: the structure is parsed once
// at open; tensors are copied out with one read or handed out as views into the mapping.
#pragma once

#include "msgpack_parser.hpp"

#include <ckpt/sdk_io.hpp>

#include <ckpt/sdk.hpp>

#include <string>

namespace ckpt_msgpack {

class MsgpackReader final : public ckpt::sdk::Reader {
 public:
  explicit MsgpackReader(const std::string& path);

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;

 private:
  const ckpt_doc::Tree::Tensor& entry(uint64_t id) const;

  ckpt::sdk::MappedFile file_;
  MsgpackDocument doc_;  // views into file_, so declared after it
};

}  // namespace ckpt_msgpack
