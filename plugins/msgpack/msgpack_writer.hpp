// Streams a document into the ckpt MessagePack layout; the shared layout writer checks the
// host's calls and orders the document. Container sizes come from the host's exact counts, so every map header is written before its entries and nothing is buffered
// except msgpack's small headers; tensor bytes go from the host's buffer to the file.
#pragma once

#include <doc_writer.hpp>

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <msgpack/pack.hpp>

#include <string>

namespace ckpt_msgpack {

// A growable byte sink for headers whose size must be known before they are written.
struct HeaderBuffer {
  std::string bytes;
  void write(const char* p, size_t n) { bytes.append(p, n); }
};

class MsgpackWriter final : public ckpt_doc::LayoutWriter {
 public:
  explicit MsgpackWriter(const std::string& path);

 private:
  void open_root(uint64_t members) override;
  void open_group(std::string_view name, uint64_t members) override;
  void open_attrs(uint64_t n) override;
  void write_attribute(std::string_view name, const ckpt_value& value, const std::string& where) override;
  void close_attrs() override {}
  void write_tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data,
                    const std::string& where) override;
  void close_group(bool) override {}
  void close_document() override { out_.close(); }

  template <class Packer>
  static void pack_text(Packer& p, std::string_view s);
  template <class Packer>
  static void pack_name(Packer& p, std::string_view name);
  void pack_value(const ckpt_value& v, const std::string& what);
  void pack_float64(double d);

  ckpt::sdk::OutputFile out_;
  msgpack::packer<ckpt::sdk::OutputFile> pk_;
  HeaderBuffer head_;  // reused across tensors: no allocation per tensor once warm
  HeaderBuffer tail_;
};

}  // namespace ckpt_msgpack
