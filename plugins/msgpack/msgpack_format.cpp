// The "msgpack" format: what it declares to the host, how it recognises its files, and the
// plugin's entry point.
#include "msgpack_layout.hpp"
#include "msgpack_reader.hpp"
#include "msgpack_writer.hpp"

#include <ckpt/sdk.hpp>

namespace ckpt_msgpack {

namespace {

// Reads a msgpack str header at `p`; false when it is not a str or does not fit in `head`.
bool read_str(std::span<const uint8_t> head, size_t& p, std::string_view& out) {
  if (p >= head.size()) return false;
  const uint8_t tag = head[p];
  size_t h, n = 0;
  if (tag >= 0xa0 && tag <= 0xbf) { h = 1; n = tag & 0x1f; }
  else if (tag == 0xd9) h = 2;
  else if (tag == 0xda) h = 3;
  else if (tag == 0xdb) h = 5;
  else return false;
  if (head.size() - p < h) return false;
  for (size_t k = 1; k < h; ++k) n = (n << 8) | head[p + k];
  if (head.size() - p - h < n) return false;
  out = {reinterpret_cast<const char*>(head.data() + p + h), n};
  p += h + n;
  return true;
}

}  // namespace

struct MsgpackFormat {
  static constexpr const char* name = "msgpack";
  static constexpr const char* long_name = "ckpt MessagePack document";
  static std::vector<std::string> extensions() { return {".msgpack", ".mpk"}; }
  // The key and value that open every file, after a fixmap, map16 or map32 header. Only a
  // hint for the registry's pre-filter; identify() decides.
  static std::vector<ckpt::sdk::Magic> magic() {
    const std::string opening = std::string("\xa7") + std::string(kFormatKey) + "\xac" +
                                std::string(kFormatValue);
    return {{1, opening}, {3, opening}, {5, opening}};
  }
  static constexpr uint32_t capabilities =
      CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
      CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST |
      CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes =
      CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 | CKPT_DTYPES_COMPLEX;

  static int identify(std::span<const uint8_t> head, uint64_t /*file_size*/) {
    if (head.empty()) return 0;
    size_t p;
    const uint8_t tag = head[0];
    if (tag >= 0x81 && tag <= 0x8f) p = 1;
    else if (tag == 0xde) p = 3;
    else if (tag == 0xdf) p = 5;
    else return 0;
    std::string_view key, value;
    if (!read_str(head, p, key) || key != kFormatKey) return 0;
    if (!read_str(head, p, value) || value != kFormatValue) return 0;
    return 100;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path,
                                                        ckpt::sdk::Options&) {
    return std::make_unique<MsgpackWriter>(path);
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path,
                                                        ckpt::sdk::Options&) {
    return std::make_unique<MsgpackReader>(path);
  }
};

}  // namespace ckpt_msgpack

CKPT_DECLARE_PLUGIN("msgpack", "0.1.0", ckpt_msgpack::MsgpackFormat)
