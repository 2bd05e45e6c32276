// Streams a document into the ckpt MessagePack layout. Container sizes come from the host's
// exact counts, so every map header is written before its entries and nothing is buffered
// except msgpack's small headers; tensor bytes go from the host's buffer to the file.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <msgpack/pack.hpp>

#include <string>
#include <unordered_set>
#include <vector>

namespace ckpt_msgpack {

// A growable byte sink for headers whose size must be known before they are written.
struct HeaderBuffer {
  std::string bytes;
  void write(const char* p, size_t n) { bytes.append(p, n); }
};

class MsgpackWriter final : public ckpt::sdk::Writer {
 public:
  explicit MsgpackWriter(const std::string& path);

  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  struct OpenGroup {
    std::string name;
    uint64_t attributes_left;
    uint64_t children_left;
    // The host's document cannot hold duplicates, but a streaming caller could send them,
    // and a map with a repeated key is a file no reader accepts.
    std::unordered_set<std::string> attribute_names;
    std::unordered_set<std::string> child_names;
  };

  OpenGroup& current(const char* event);
  // Checks that a child may come now and claims its name.
  void claim_child(std::string_view name, const char* event);
  std::string where() const;
  template <class Packer>
  static void pack_text(Packer& p, std::string_view s);
  template <class Packer>
  static void pack_name(Packer& p, std::string_view name);
  void pack_value(const ckpt_value& v, std::string_view name);
  void pack_float64(double d);

  ckpt::sdk::OutputFile out_;
  msgpack::packer<ckpt::sdk::OutputFile> pk_;
  std::vector<OpenGroup> stack_;
  bool root_done_ = false;
  bool finished_ = false;
  HeaderBuffer head_;  // reused across tensors: no allocation per tensor once warm
  HeaderBuffer tail_;
};

}  // namespace ckpt_msgpack
