// Reads a safetensors file through one read-only mapping: the header is parsed and checked
// once at open, touching no tensor data; tensors are copied out with one read or handed out
// as views into the mapping.
#pragma once

#include "st_header.hpp"
#include <ckpt/sdk_io.hpp>
#include "st_document.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>

#include <string>

namespace ckpt_safetensors {

class SafetensorsReader final : public ckpt::sdk::Reader {
 public:
  SafetensorsReader(const std::string& path, const ckpt::sdk::ReadLimits& limits);

  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;
  // Copies the box row by row from the mapping, touching only its pages: without this the host
  // would read the whole tensor first whenever a view of it is unaligned.
  void read_slice(uint64_t id, std::span<const uint64_t> start, std::span<const uint64_t> count,
                  std::span<std::byte> dst) override;

 private:
  const TensorEntry& entry(uint64_t id) const;

  ckpt::sdk::MappedFile file_;
  Header header_;
  Listing listing_;
};

}  // namespace ckpt_safetensors
