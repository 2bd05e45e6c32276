// Writes a document as hello text, streaming: each event the host sends becomes one line.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <string>

namespace hello {

class Writer : public ckpt::sdk::Writer {
 public:
  explicit Writer(const std::string& path);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  void hex(std::span<const std::byte> data);

  ckpt::sdk::OutputFile out_;
};

}  // namespace hello
