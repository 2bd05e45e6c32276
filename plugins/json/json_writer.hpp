// Writes a ckpt-json file as the host streams events: no DOM, tensors encoded in chunks. The
// shared layout writer checks the events and orders the document; this writes its text.
#pragma once

#include <doc_writer.hpp>

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <string>
#include <vector>

namespace ckpt_json {

class JsonWriter final : public ckpt_doc::LayoutWriter {
 public:
  // Options: tensor_encoding=base64|numbers, indent=0..8.
  JsonWriter(const std::string& path, ckpt::sdk::Options& options);

 private:
  struct Level {
    bool has_members = false;  // something written inside this group's braces
    bool attrs_has_members = false;
  };

  void open_root(uint64_t members) override;
  void open_group(std::string_view name, uint64_t members) override;
  void open_attrs(uint64_t n) override;
  void write_attribute(std::string_view name, const ckpt_value& value, const std::string& where) override;
  void close_attrs() override;
  void write_tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data,
                    const std::string& where) override;
  void close_group(bool empty) override;
  void close_document() override;
  void check_text(std::string_view s, const std::string& where) const override;

  void newline(size_t depth);
  void open_member(std::string_view name);
  void append_key(std::string_view name);
  void append_value(const ckpt_value& v, const std::string& where);
  void write_base64(std::span<const std::byte> data);
  void write_numbers(uint32_t dtype, std::span<const std::byte> data);
  void flush_text();

  // Options first: they are parsed before the file is created.
  bool numbers_ = false;
  size_t indent_ = 1;
  ckpt::sdk::OutputFile out_;
  std::vector<Level> levels_;
  std::string text_;  // pending output, flushed in large pieces
  std::vector<char> chunk_;
};

}  // namespace ckpt_json
