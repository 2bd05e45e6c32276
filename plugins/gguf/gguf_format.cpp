// The "gguf" format: what it declares to the host, how it recognises its files, and the
// plugin's entry point.
#include "gguf_reader.hpp"
#include "gguf_writer.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_limits.hpp>

#include <charconv>
#include <cstring>
#include <type_traits>

namespace ckpt_gguf {

struct GgufFormat {
  static constexpr const char* name = "gguf";
  static constexpr const char* long_name = "GGUF (ggml, llama.cpp): key-values and tensors, block-quantized types kept";
  static std::vector<std::string> extensions() { return {".gguf"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, "GGUF"}}; }
  // No nested groups: GGUF holds key-values and tensors, nothing else. The host flattens a
  // document's groups (names joined with '.') and names what that loses.
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes =
      CKPT_DTYPE_BIT(CKPT_DTYPE_F32) | CKPT_DTYPE_BIT(CKPT_DTYPE_F16) | CKPT_DTYPE_BIT(CKPT_DTYPE_BF16) |
      CKPT_DTYPE_BIT(CKPT_DTYPE_F64) | CKPT_DTYPE_BIT(CKPT_DTYPE_I8) | CKPT_DTYPE_BIT(CKPT_DTYPE_I16) |
      CKPT_DTYPE_BIT(CKPT_DTYPE_I32) | CKPT_DTYPE_BIT(CKPT_DTYPE_I64) | CKPT_DTYPES_GGML_BLOCKS;

  static int identify(std::span<const uint8_t> head, uint64_t file_size) {
    if (head.size() < 4 || file_size < 24 || std::memcmp(head.data(), "GGUF", 4) != 0) return 0;
    if (head.size() < 8) return 60;
    const uint32_t version = static_cast<uint32_t>(head[4]) | static_cast<uint32_t>(head[5]) << 8 |
                             static_cast<uint32_t>(head[6]) << 16 | static_cast<uint32_t>(head[7]) << 24;
    return version == 2 || version == 3 ? 100 : 70;  // other versions: ours, refused by name
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options& options) {
    const std::string staging = options.get("staging_bytes", std::to_string(uint64_t{16} << 20));
    uint64_t bytes = 0;
    auto [end, ec] = std::from_chars(staging.data(), staging.data() + staging.size(), bytes);
    if (ec != std::errc() || end != staging.data() + staging.size())
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option staging_bytes must be a number of bytes, got '" + staging + "'");
    const std::string names = options.get("names", "auto");
    NameMapping mapping = NameMapping::automatic;
    if (names == "llama") mapping = NameMapping::llama;
    else if (names == "keep") mapping = NameMapping::keep;
    else if (names != "auto")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option names='" + names + "': expected auto, llama or keep");
    // What llama.cpp needs of a llama model that a state dict cannot tell (config.json has it).
    LlamaOptions llama;
    auto number = [&](const char* key, auto& out, bool positive) {
      if (!options.has(key)) return;
      const std::string text = options.get(key, "");
      typename std::remove_reference_t<decltype(out)>::value_type v{};
      auto [e, err] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (err != std::errc() || e != text.data() + text.size() || !(v > 0) || (positive && v > decltype(v)(1u << 30)))
        ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, std::string("option ") + key + "='" + text + "': expected a positive number");
      out = v;
    };
    number("llama.head_count", llama.head_count, true);
    number("llama.head_count_kv", llama.head_count_kv, true);
    number("llama.context_length", llama.context_length, true);
    number("llama.rms_epsilon", llama.rms_epsilon, false);
    options.check_all_used(name);  // before the file is created
    return std::make_unique<GgufWriter>(path, bytes, mapping, llama);
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    const ckpt::sdk::ReadLimits limits = ckpt::sdk::ReadLimits::parse(options);
    // -r max_alignment=N: the largest general.alignment read (64 KiB by default, at most 2^30).
    const std::string text = options.get("max_alignment", std::to_string(kMaxAlignment));
    uint64_t max_alignment = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), max_alignment);
    if (ec != std::errc() || end != text.data() + text.size() || max_alignment == 0 || max_alignment > kMaxReadAlignment)
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT,
                      "option max_alignment='" + text + "': expected a number of bytes from 1 to 2^30 (1073741824)");
    return std::make_unique<GgufReader>(path, limits, max_alignment);
  }
};

}  // namespace ckpt_gguf

CKPT_DECLARE_PLUGIN("gguf", "0.1.0", ckpt_gguf::GgufFormat)
