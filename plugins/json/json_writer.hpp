// Writes a ckpt-json file as the host streams events: no DOM, tensors encoded in chunks.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <string>
#include <vector>

namespace ckpt_json {

class JsonWriter final : public ckpt::sdk::Writer {
 public:
  // Options: tensor_encoding=base64|numbers, indent=0..8.
  JsonWriter(const std::string& path, ckpt::sdk::Options& options);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  struct Level {
    std::string name;
    uint64_t attrs_left;
    uint64_t children_left;
    bool has_members = false;  // something written inside this group's braces
    bool in_attrs = false;     // inside its "$attrs" object
    bool attrs_has_members = false;
    bool children_started = false;
  };

  std::string path_of(std::string_view name) const;
  void check_name(std::string_view name, const char* what) const;
  void check_utf8(std::string_view s, const std::string& where) const;
  void newline(size_t depth);
  void open_member(Level& level, std::string_view name);
  void close_attrs(Level& level);
  void append_key(std::string_view name);
  void append_value(const ckpt_value& v, const std::string& where);
  void write_base64(std::span<const std::byte> data);
  void write_numbers(uint32_t dtype, std::span<const std::byte> data);
  void flush_text();

  // Options first: they are parsed before the file is created.
  bool numbers_ = false;
  size_t indent_ = 1;
  ckpt::sdk::OutputFile out_;
  std::vector<Level> stack_;
  bool root_done_ = false;
  std::string text_;  // pending output, flushed in large pieces
  std::vector<char> chunk_;
};

}  // namespace ckpt_json
