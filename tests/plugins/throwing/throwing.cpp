// A plugin that throws from every entry point, with every kind of exception, so the tests can
// show that nothing thrown inside a plugin reaches the host as anything but a ckpt::Error.
// "throw_open" fails while opening; "throw_late" opens and then fails in every call after.
#include <ckpt/sdk.hpp>

#include <stdexcept>

namespace {

[[noreturn]] void throw_std(const char* where) { throw std::runtime_error(std::string("throwing plugin: ") + where); }
[[noreturn]] void throw_int() { throw 42; }
[[noreturn]] void throw_io(const char* where) {
  ckpt::sdk::fail(CKPT_ERR_IO, std::string("throwing plugin: ") + where);
}

class LateWriter : public ckpt::sdk::Writer {
 public:
  void begin_group(std::string_view, uint64_t, uint64_t) override { throw_std("begin_group"); }
  void end_group() override { throw_int(); }
  void attribute(std::string_view, const ckpt_value&) override { throw_io("attribute"); }
  void tensor(const ckpt::sdk::TensorInfo&, std::span<const std::byte>) override { throw_int(); }
  void finish() override { throw_std("finish"); }
};

class LateReader : public ckpt::sdk::Reader {
 public:
  void list(const ckpt::sdk::Visitor&) override { throw_int(); }
  void read_tensor(uint64_t, std::span<std::byte>) override { throw_std("read_tensor"); }
  const void* map_tensor(uint64_t) override { throw_io("map_tensor"); }
};

struct ThrowOpen {
  static constexpr const char* name = "throw_open";
  static constexpr const char* long_name = "throws while opening";
  static std::vector<std::string> extensions() { return {".throwopen"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;
  static int identify(std::span<const uint8_t>, uint64_t) { throw_std("identify"); }
  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string&, ckpt::sdk::Options&) {
    throw_std("open_writer");
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string&, ckpt::sdk::Options&) {
    throw_int();
  }
};

struct ThrowLate {
  static constexpr const char* name = "throw_late";
  static constexpr const char* long_name = "throws after opening";
  static std::vector<std::string> extensions() { return {".throwlate"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;
  static int identify(std::span<const uint8_t>, uint64_t) { throw_int(); }
  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string&, ckpt::sdk::Options&) {
    return std::make_unique<LateWriter>();
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string&, ckpt::sdk::Options&) {
    return std::make_unique<LateReader>();
  }
};

}  // namespace

CKPT_DECLARE_PLUGIN("throwing", "1.0.0", ThrowOpen, ThrowLate)
