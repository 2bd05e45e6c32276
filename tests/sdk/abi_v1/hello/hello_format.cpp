// The plugin's entry point: what the format is called, how its files are recognised, and which
// of the ckpt document model's features it promises (the conformance kit holds it to them).
#include "hello.hpp"

namespace {

struct HelloFormat {
  static constexpr const char* name = "hello";
  static constexpr const char* long_name = "hello text checkpoint (the ckpt SDK example)";
  static std::vector<std::string> extensions() { return {".hello"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, std::string(hello::kMagic)}}; }
  // No map: the bytes are hex, not raw.
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS |
                                           CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;

  // Called on the first bytes of any file whose format is not known yet: cheap, never past `head`.
  static int identify(std::span<const uint8_t> head, uint64_t) {
    return std::string_view(reinterpret_cast<const char*>(head.data()), head.size()).starts_with(hello::kHeader) ? 100 : 0;
  }
  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<hello::Writer>(path);
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<hello::Reader>(path);
  }
};

}  // namespace

CKPT_DECLARE_PLUGIN("hello", "1.0.0", HelloFormat)
