// The "pickle" format: Python pickles of NumPy data (.pkl, .pickle, .joblib), read without
// running any of their code. Read only: ckpt writes no pickles.
#include "compressed.hpp"
#include "pickle_reader.hpp"
#include "unpickler.hpp"

#include <ckpt/sdk.hpp>

#include <charconv>

namespace ckpt_pickle {

struct PickleFormat {
  static constexpr const char* name = "pickle";
  static constexpr const char* long_name = "Python pickle of NumPy data (read safely)";
  static std::vector<std::string> extensions() { return {".pkl", ".pickle", ".joblib"}; }
  // Pickles, and joblib's compressed ones (compressed.hpp): zlib (0x78 and a second byte the
  // header check allows), gzip, bz2, xz and LZMA alone.
  static std::vector<ckpt::sdk::Magic> magic() {
    return {{0, "\x80\x02"}, {0, "\x80\x03"}, {0, "\x80\x04"}, {0, "\x80\x05"},
            {0, "\x78\x01"}, {0, "\x78\x5e"}, {0, "\x78\x9c"}, {0, "\x78\xda"},
            {0, "\x1f\x8b\x08"}, {0, "BZh"}, {0, "\xfd" "7zXZ"}, {0, std::string("\x5d\x00\x00", 3)}};
  }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS |
                                           CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST;
  static constexpr uint32_t dtypes =
      (CKPT_DTYPES_ALL & ~CKPT_DTYPE_BIT(CKPT_DTYPE_BF16)) | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_COMPLEX;

  // PROTO 2..5. torch's legacy files are pickles too, but start with torch's magic number:
  // those belong to the pytorch format, which explains why it will not read them.
  static int identify(std::span<const uint8_t> head, uint64_t) {
    if (const Container c = container_of(head); c != Container::none) return starts_a_pickle(c, head) ? 60 : 0;
    if (head.size() < 3 || head[0] != 0x80 || head[1] < 2 || head[1] > 5) return 0;
    if (is_legacy_torch(head)) return 0;
    return 60;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string&, ckpt::sdk::Options&) {
    ckpt::sdk::fail(CKPT_ERR_UNSUPPORTED, "the pickle format is read only");
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    const ckpt::sdk::ReadLimits limits = ckpt::sdk::ReadLimits::parse(options);
    std::optional<uint64_t> max_decompressed;
    if (const std::string v = options.get("max_decompressed", ""); !v.empty()) {
      uint64_t n = 0;
      auto r = std::from_chars(v.data(), v.data() + v.size(), n);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size())
        ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option max_decompressed='" + v + "': expected a non-negative integer");
      max_decompressed = n;
    }
    return std::make_unique<PickleReader>(path, limits, max_decompressed);
  }
};

}  // namespace ckpt_pickle

CKPT_DECLARE_PLUGIN("pickle", "0.1.0", ckpt_pickle::PickleFormat)
