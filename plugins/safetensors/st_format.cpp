// The "safetensors" format: what it declares to the host, how it recognises its files, and
// the plugin's entry point.
#include "st_layout.hpp"
#include "st_reader.hpp"

#include <ckpt/sdk_limits.hpp>
#include "st_writer.hpp"

#include <ckpt/sdk.hpp>

#include <charconv>

namespace ckpt_safetensors {

namespace {

uint64_t staging_option(ckpt::sdk::Options& options) {
  const std::string text = options.get("staging_bytes", std::to_string(kDefaultStagingBytes));
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT,
                    "option staging_bytes must be a number of bytes, got '" + text + "'");
  return v;
}

}  // namespace

struct SafetensorsFormat {
  static constexpr const char* name = "safetensors";
  // Says where a plain safetensors reader sees less than ckpt does.
  static constexpr const char* long_name =
      "safetensors (groups as '/' paths; attributes and the tree as JSON in __metadata__)";
  static std::vector<std::string> extensions() { return {".safetensors"}; }
  // The header size comes first and varies; every header is a JSON object.
  static std::vector<ckpt::sdk::Magic> magic() { return {{8, "{"}}; }
  static constexpr uint32_t capabilities =
      CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS |
      CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC | CKPT_CAP_PRIVATE_TREE;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 |
                                     CKPT_DTYPE_BIT(CKPT_DTYPE_C64);

  static int identify(std::span<const uint8_t> head, uint64_t file_size) {
    if (head.size() < 9 || file_size < 10) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | head[static_cast<size_t>(i)];
    if (n < 2 || n > kMaxHeaderBytes || n > file_size - 8 || head[8] != '{') return 0;
    const size_t visible = static_cast<size_t>(std::min<uint64_t>(head.size(), 8 + n));
    const std::string_view text(reinterpret_cast<const char*>(head.data()) + 8, visible - 8);
    const size_t first = text.find_first_not_of(" \t\r\n", 1);
    if (first == std::string_view::npos) return 50;  // the rest of the header is not in `head`
    if (text[first] == '}') return text.find_first_not_of(" \t\r\n", first + 1) == std::string_view::npos ? 90 : 0;
    if (text[first] != '"') return 0;
    const bool telling = text.find("\"dtype\"") != std::string_view::npos ||
                         text.find("\"__metadata__\"") != std::string_view::npos;
    return telling ? 100 : 60;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options& options) {
    const uint64_t staging = staging_option(options);
    const std::string aliases = options.get("aliases", "on");
    if (aliases != "on" && aliases != "off")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option aliases='" + aliases + "': expected on or off");
    options.check_all_used(name);  // before the file is created: a typo leaves nothing behind
    return std::make_unique<SafetensorsWriter>(path, staging, aliases == "on");
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    return std::make_unique<SafetensorsReader>(path, ckpt::sdk::ReadLimits::parse(options));
  }
};

}  // namespace ckpt_safetensors

CKPT_DECLARE_PLUGIN("safetensors", "0.1.0", ckpt_safetensors::SafetensorsFormat)
