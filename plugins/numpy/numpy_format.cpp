// The "numpy" format: NumPy's .npy (one array) and .npz (a zip of .npy members) files, what the
// plugin declares and how it recognises them (docs/formats/numpy.md).
#include "numpy_reader.hpp"
#include "numpy_writer.hpp"

#include <ckpt/sdk.hpp>

#include <cstring>

namespace ckpt_numpy {

struct NumpyFormat {
  static constexpr const char* name = "numpy";
  static constexpr const char* long_name = "NumPy .npz (zip of .npy arrays, '/' in keys as groups) and .npy (one array)";
  // .npz first: what a document is written as unless the file is named .npy.
  static std::vector<std::string> extensions() { return {".npz", ".npy"}; }
  static std::vector<ckpt::sdk::Magic> magic() {
    return {{0, "\x93NUMPY"}, {0, "PK\x03\x04"}, {0, std::string("PK\x05\x06", 4)}};
  }
  // Groups nest ('/' in member names; an empty group is a directory entry); no attributes, so
  // the host names every attribute a conversion drops. Stored little-endian C-order arrays map
  // in place; the rest are copied (map_tensor materialises them).
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_NESTED_GROUPS |
                                           CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  // NumPy has no bfloat16 or float8: the host casts them (and names the cast) before writing.
  static constexpr uint32_t dtypes =
      (CKPT_DTYPES_ALL & ~CKPT_DTYPE_BIT(CKPT_DTYPE_BF16)) | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_COMPLEX;

  static int identify(std::span<const uint8_t> head, uint64_t file_size) {
    if (head.size() >= 8 && std::memcmp(head.data(), "\x93NUMPY", 6) == 0 && head[6] >= 1 && head[6] <= 3 && head[7] == 0)
      return 100;
    // An empty archive: np.savez of nothing.
    if (file_size == 22 && head.size() >= 4 && std::memcmp(head.data(), "PK\x05\x06", 4) == 0) return 50;
    if (head.size() < 30 || std::memcmp(head.data(), "PK\x03\x04", 4) != 0) return 0;
    const size_t n = head[26] | (size_t{head[27]} << 8);
    if (head.size() < 30 + n || n == 0) return 0;
    const std::string_view first(reinterpret_cast<const char*>(head.data()) + 30, n);
    if (first.size() >= 4 && first.substr(first.size() - 4) == ".npy") return 90;  // '.npy': np.savez's empty key
    if (first.back() == '/') return 20;  // a directory first: ckpt's empty group, or any zip
    return 0;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options& options) {
    const std::string container = options.get("container", "auto");
    Container c = container_for(path);
    if (container == "npy")
      c = Container::npy;
    else if (container == "npz")
      c = Container::npz;
    else if (container != "auto")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option container='" + container + "': expected auto, npz or npy");
    const std::string compress = options.get("compress", "none");
    if (compress != "none" && compress != "deflate")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option compress='" + compress + "': expected none or deflate");
    return std::make_unique<NumpyWriter>(path, c, compress == "deflate");
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    return std::make_unique<NumpyReader>(path, ckpt::sdk::ReadLimits::parse(options));
  }
};

}  // namespace ckpt_numpy

CKPT_DECLARE_PLUGIN("numpy", "0.1.0", ckpt_numpy::NumpyFormat)
