// Reads a ckpt-json file: one SAX pass at open builds the tree; list() replays it and
// read_tensor() copies or decodes one tensor.
#pragma once

#include "json_tree.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <memory>
#include <string>

namespace ckpt::jsonfmt {

class JsonReader final : public sdk::Reader {
 public:
  explicit JsonReader(const std::string& path);
  void list(const sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;

 private:
  void list_group(const sdk::Visitor& visitor, const GroupRec& group);

  std::string path_;
  // Large base64 tensors are views into this mapping; released when none is.
  std::unique_ptr<sdk::MappedFile> file_;
  Tree tree_;
};

}  // namespace ckpt::jsonfmt
