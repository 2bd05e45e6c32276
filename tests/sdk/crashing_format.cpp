// A plugin that writes fine and aborts the process as soon as anything opens a file for reading:
// `ckpt plugins --check` must survive it and name the case that was running.
#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <cstdlib>

namespace {

class NothingWriter : public ckpt::sdk::Writer {
 public:
  explicit NothingWriter(const std::string& path) : out_(path) { out_.write("CRASHING"); }
  void begin_group(std::string_view, uint64_t, uint64_t) override {}
  void end_group() override {}
  void attribute(std::string_view, const ckpt_value&) override {}
  void tensor(const ckpt::sdk::TensorInfo&, std::span<const std::byte>) override {}
  void finish() override { out_.close(); }

 private:
  ckpt::sdk::OutputFile out_;
};

struct CrashingFormat {
  static constexpr const char* name = "crashing";
  static constexpr const char* long_name = "aborts when read";
  static std::vector<std::string> extensions() { return {".crashing"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, "CRASHING"}}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE;
  static constexpr uint32_t dtypes = CKPT_DTYPE_BIT(CKPT_DTYPE_F32);
  static int identify(std::span<const uint8_t> head, uint64_t) {
    return head.size() >= 8 && std::string_view(reinterpret_cast<const char*>(head.data()), 8) == "CRASHING" ? 100 : 0;
  }
  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<NothingWriter>(path);
  }
  [[noreturn]] static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string&, ckpt::sdk::Options&) {
    std::abort();
  }
};

}  // namespace

CKPT_DECLARE_PLUGIN("crashing", "0.0.1", CrashingFormat)
