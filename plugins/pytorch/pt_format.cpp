// The "pytorch" format: torch.save's zip files (.pt, .pth), what the plugin declares and how
// it recognises them.
#include "pt_reader.hpp"
#include "pt_writer.hpp"

#include <ckpt/sdk.hpp>

#include <cstring>

namespace ckpt_pytorch {

struct PytorchFormat {
  static constexpr const char* name = "pytorch";
  static constexpr const char* long_name = "PyTorch torch.save zip file";
  static std::vector<std::string> extensions() { return {".pt", ".pth"}; }
  // The zip's, and the legacy format's magic number (a pickled LONG1 after PROTO, or after
  // PROTO and FRAME from protocol 4), which open() refuses with an explanation.
  static std::vector<ckpt::sdk::Magic> magic() {
    const std::string legacy("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12);
    return {{0, "PK\x03\x04"}, {2, legacy}, {11, legacy}};
  }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST |
                                           CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes =
      CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 | CKPT_DTYPES_COMPLEX;

  // A zip whose first entry lies in a folder and is one torch writes there; or the legacy
  // format's magic number, claimed so that it gets a clear refusal rather than "unknown".
  static int identify(std::span<const uint8_t> head, uint64_t) {
    if (is_legacy_torch(head)) return 100;
    if (head.size() < 30 || std::memcmp(head.data(), "PK\x03\x04", 4) != 0) return 0;
    const size_t n = head[26] | (size_t{head[27]} << 8);
    if (head.size() < 30 + n) return 0;
    std::string_view first(reinterpret_cast<const char*>(head.data()) + 30, n);
    const size_t slash = first.find('/');
    if (slash == std::string_view::npos || slash == 0) return 0;
    std::string_view rest = first.substr(slash + 1);
    for (std::string_view known : {"data.pkl", "version", "byteorder", "constants.pkl"})
      if (rest == known) return 100;
    // torch.jit.save puts the user's extra files and the code first.
    for (std::string_view folder : {"data/", ".data/", "extra/", "code/", "constants/"})
      if (rest.starts_with(folder)) return 100;
    return 0;
  }

  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options& options) {
    // Tensors by default: torch 1.13's weights_only loader (Debian's torch) refuses Python
    // floats, and users load checkpoints that way (docs/formats/pytorch.md, "Floats").
    const std::string floats = options.get("floats", "tensor");
    if (floats != "python" && floats != "tensor")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option floats='" + floats + "': expected python or tensor");
    // ZIP64 records only where a size, offset or count needs them, as torch writes; "always"
    // for files that must exercise a reader's ZIP64 path without being 4 GiB.
    const std::string zip64 = options.get("zip64", "auto");
    if (zip64 != "auto" && zip64 != "always")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option zip64='" + zip64 + "': expected auto or always");
    // The oldest torch that must load the file. torch 1.13 (Debian's) has no storages of the
    // dtypes torch added later (uint16-64 in 2.3, float8 in 2.1) and fails on a whole file
    // holding one; uint64 has no torch 1.13 dtype that holds its values at all. The format
    // declares them held exactly (ckpt reads them back bit for bit), so they are written by
    // default, and torch=1.13 refuses them instead, naming the tensor.
    const std::string torch = options.get("torch", "2.3");
    if (torch != "1.13" && torch != "2.3")
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "option torch='" + torch + "': expected 1.13 or 2.3");
    return std::make_unique<PtWriter>(path, floats == "tensor", zip64 == "always", torch == "2.3");
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    return std::make_unique<PtReader>(path, ckpt::sdk::ReadLimits::parse(options));
  }
};

}  // namespace ckpt_pytorch

CKPT_DECLARE_PLUGIN("pytorch", "0.1.0", ckpt_pytorch::PytorchFormat)
