// hello: a made-up checkpoint format, small enough to read in one sitting, complete enough to
// pass the ckpt conformance kit. A hello file is text, one record a line:
//
//   hello-ckpt 1
//   G 0:                                  a group (the first is the root, named "")
//   A 5:epoch i 3                         an attribute: name, type letter, value
//   A 2:lr f 3fb999999999999a             floats as the 16 hex digits of their bits
//   A 4:tags S 2 3:cnn 5:small            arrays: upper-case letter, count, elements
//   T 6:weight f32 2 2 3 0000803f...      a tensor: name, dtype, rank, dims, hex bytes
//   E                                     the end of the innermost group
//
// Names and strings are netstrings (<length>:<bytes>), so they need no escaping. The walk-through
// is docs/plugin-guide.md.
#include "hello_reader.hpp"
#include "hello_text.hpp"
#include "hello_writer.hpp"

#include <ckpt/sdk.hpp>

namespace {

struct HelloFormat {
  static constexpr const char* name = "hello";
  static constexpr const char* long_name = "hello text checkpoint (the ckpt SDK example)";
  static std::vector<std::string> extensions() { return {".hello"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, std::string(hello::kMagic)}}; }
  // Promises the conformance kit holds the plugin to: no map (the bytes are hex, not raw).
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS |
                                           CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;

  // Called on the first bytes of any file whose format is not known yet: cheap, and never
  // past `head`.
  static int identify(std::span<const uint8_t> head, uint64_t) {
    std::string_view h(reinterpret_cast<const char*>(head.data()), head.size());
    return h.starts_with(hello::kHeader) ? 100 : 0;
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
