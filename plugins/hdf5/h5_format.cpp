// The "hdf5" format: what it declares to the host, how it recognises its files, and the
// plugin's entry point.
#include "h5_reader.hpp"
#include "h5_writer.hpp"

#include <ckpt/sdk.hpp>

#include <cstring>

namespace ckpt_hdf5 {

namespace {
constexpr char kSignature[] = "\x89HDF\r\n\x1a\n";
constexpr size_t kSignatureSize = 8;
// Where HDF5 looks for the superblock within the first bytes the host hands to identify().
constexpr uint64_t kSuperblockOffsets[] = {0, 512, 1024, 2048};
}  // namespace

struct Hdf5Format {
  static constexpr const char* name = "hdf5";
  static constexpr const char* long_name = "HDF5 (h5py-compatible)";
  static std::vector<std::string> extensions() { return {".h5", ".hdf5"}; }
  static std::vector<ckpt::sdk::Magic> magic() {
    std::vector<ckpt::sdk::Magic> m;
    for (uint64_t at : kSuperblockOffsets) m.push_back({at, std::string(kSignature, kSignatureSize)});
    return m;
  }
  static constexpr uint32_t capabilities =
      CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_ATTRIBUTES | CKPT_CAP_NESTED_GROUPS |
      CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 | CKPT_DTYPES_COMPLEX;

  static int identify(std::span<const uint8_t> head, uint64_t /*file_size*/) {
    for (uint64_t at : kSuperblockOffsets)
      if (head.size() >= at + kSignatureSize && std::memcmp(head.data() + at, kSignature, kSignatureSize) == 0)
        return 100;
    return 0;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path,
                                                        ckpt::sdk::Options& options) {
    return std::make_unique<H5Writer>(path, WriteOptions::parse(options));
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path,
                                                        ckpt::sdk::Options& options) {
    return std::make_unique<H5Reader>(path, ReadOptions::parse(options));
  }
};

}  // namespace ckpt_hdf5

CKPT_DECLARE_PLUGIN("hdf5", "0.1.0", ckpt_hdf5::Hdf5Format)
