// The "pickle" format: Python pickles of NumPy data (.pkl, .pickle, .joblib), read without
// running any of their code. Read only: ckpt writes no pickles.
#include "pickle_reader.hpp"
#include "unpickler.hpp"

#include <ckpt/sdk.hpp>

namespace ckpt_pickle {

struct PickleFormat {
  static constexpr const char* name = "pickle";
  static constexpr const char* long_name = "Python pickle of NumPy data (read safely)";
  static std::vector<std::string> extensions() { return {".pkl", ".pickle", ".joblib"}; }
  static std::vector<ckpt::sdk::Magic> magic() {
    return {{0, "\x80\x02"}, {0, "\x80\x03"}, {0, "\x80\x04"}, {0, "\x80\x05"}};
  }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS |
                                           CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL & ~CKPT_DTYPE_BIT(CKPT_DTYPE_BF16);

  // PROTO 2..5. torch's legacy files are pickles too, but start with torch's magic number:
  // those belong to the pytorch format, which explains why it will not read them.
  static int identify(std::span<const uint8_t> head, uint64_t) {
    if (head.size() < 3 || head[0] != 0x80 || head[1] < 2 || head[1] > 5) return 0;
    if (is_legacy_torch(head)) return 0;
    return 60;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string&, ckpt::sdk::Options&) {
    ckpt::sdk::fail(CKPT_ERR_UNSUPPORTED, "the pickle format is read only");
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    return std::make_unique<PickleReader>(path, ckpt::sdk::ReadLimits::parse(options));
  }
};

}  // namespace ckpt_pickle

CKPT_DECLARE_PLUGIN("pickle", "0.1.0", ckpt_pickle::PickleFormat)
