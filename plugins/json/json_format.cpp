// The json format's description and entry point.
#include "json_reader.hpp"
#include "json_writer.hpp"
#include "json_layout.hpp"

#include <ckpt/sdk.hpp>

#include <algorithm>

namespace ckpt_json {
namespace {

bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

struct JsonFormat {
  static constexpr const char* name = "json";
  static constexpr const char* long_name = "ckpt JSON document";
  static std::vector<std::string> extensions() { return {".json"}; }
  // "{" would claim every JSON file; identify() decides.
  static std::vector<ckpt::sdk::Magic> magic() { return {}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS |
                                           CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes =
      CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 | CKPT_DTYPES_COMPLEX;

  // Certain when the object's opening is followed, near the start, by "$format": "ckpt-json"
  // (our writer puts it first; other JSON, such as a training config, never says it).
  static int identify(std::span<const uint8_t> head, uint64_t) {
    constexpr size_t kWindow = 4096;
    std::string_view s(reinterpret_cast<const char*>(head.data()), std::min(head.size(), kWindow));
    if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
    size_t i = 0;
    while (i < s.size() && is_space(static_cast<uint8_t>(s[i]))) ++i;
    if (i == s.size() || s[i] != '{') return 0;
    const std::string key = "\"" + std::string(kFormatKey) + "\"";
    const std::string value = "\"" + std::string(kFormatName) + "\"";
    for (size_t at = s.find(key, i); at != std::string_view::npos; at = s.find(key, at + 1)) {
      size_t j = at + key.size();
      while (j < s.size() && is_space(static_cast<uint8_t>(s[j]))) ++j;
      if (j == s.size() || s[j] != ':') continue;
      ++j;
      while (j < s.size() && is_space(static_cast<uint8_t>(s[j]))) ++j;
      if (s.substr(j, value.size()) == value) return 100;
    }
    return 0;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options& options) {
    return std::make_unique<JsonWriter>(path, options);
  }

  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<JsonReader>(path);
  }
};

}  // namespace ckpt_json

CKPT_DECLARE_PLUGIN("json", "0.1.0", ckpt_json::JsonFormat)
