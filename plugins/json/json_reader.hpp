// Reads a ckpt-json file: one SAX pass at open builds the tree; list() replays it and
// read_tensor() copies or decodes one tensor.
#pragma once

#include "json_parser.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <memory>
#include <string>

namespace ckpt_json {

class JsonReader final : public ckpt::sdk::Reader {
 public:
  explicit JsonReader(const std::string& path);
  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;

 private:
  std::string path_;
  // Large base64 tensors are views into this mapping; released when none is.
  std::unique_ptr<ckpt::sdk::MappedFile> file_;
  JsonDocument doc_;
};

}  // namespace ckpt_json
