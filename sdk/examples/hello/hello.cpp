// hello: a made-up checkpoint format, small enough to read in one sitting, complete enough to
// pass the ckpt conformance kit (the walk-through is docs/plugin-guide.md). A file is
//
//   hello-ckpt 2\n              the header: magic and version
//   tensor bytes                raw, each tensor's at a multiple of 64 (so that it can be mapped)
//   skeleton                    the document without tensor bytes, as JSON (ckpt/sdk_skeleton.hpp)
//   \n<16 hex digits>\n         the trailer: where the skeleton starts
//
// The skeleton comes last because the host streams the document and lends a tensor's bytes
// only for the call that hands them over: written at once, they are never held in memory.
#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>
#include <ckpt/sdk_limits.hpp>
#include <ckpt/sdk_skeleton.hpp>
#include <ckpt/sdk_tree.hpp>

#include <charconv>
#include <cstdio>
#include <vector>

namespace {

using ckpt::sdk::fail;

constexpr std::string_view kMagic = "hello-ckpt ", kHeader = "hello-ckpt 2\n";
constexpr size_t kTrailer = 18;
// {"format": "hello", "version": 2, "root": {"attributes": [[name, type, value], ...], "children":
// [{"group": name, ...}, {"tensor": name, "dtype": "f32", "shape": [2, 3], "offset": "64"}, ...]}}
constexpr ckpt::sdk::SkeletonKeys kKeys{
    .format = "hello", .version = 2, .attributes = "attributes", .children = "children", .location = "offset"};

// Writes each tensor's bytes as they come and records the document the host streams
// (TreeRecorder checks the calls: one root, valid unique names, the announced counts).
class Writer final : public ckpt::sdk::Writer {
 public:
  explicit Writer(const std::string& path) : out_(path) { out_.write(kHeader); }
  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override {
    recorder_.begin_group(name, n_attributes, n_children);
  }
  void end_group() override { recorder_.end_group(); }
  void attribute(std::string_view name, const ckpt_value& value) override { recorder_.attribute(name, value); }

  void tensor(const ckpt::sdk::TensorInfo& t, std::span<const std::byte> data) override {
    const std::string name(t.name);
    if (!ckpt::sdk::dtype_size(t.dtype)) fail(CKPT_ERR_UNSUPPORTED, "tensor '" + name + "' has an unknown dtype");
    if (ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), name) != data.size())
      fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + name + "': its bytes do not match its shape");
    recorder_.tensor(t, offsets_.size());
    static constexpr char kZeros[64] = {};
    out_.write(kZeros, (64 - out_.offset() % 64) % 64);
    offsets_.push_back(std::to_string(out_.offset()));
    out_.write(data.data(), data.size());
  }

  void finish() override {
    recorder_.check_done();
    const uint64_t at = out_.offset();
    out_.write(ckpt::sdk::write_skeleton(recorder_.tree(), kKeys, [&](size_t k) { return std::string_view(offsets_[k]); }));
    char trailer[kTrailer + 1];
    std::snprintf(trailer, sizeof trailer, "\n%016llx\n", static_cast<unsigned long long>(at));
    out_.write(trailer, kTrailer);
    out_.close();
  }

 private:
  ckpt::sdk::TreeRecorder recorder_;
  ckpt::sdk::OutputFile out_;
  std::vector<std::string> offsets_;  // by tensor id, as the skeleton holds them
};

// Parses the skeleton once at open and replays it to every list(); a tensor's bytes are read or
// mapped from the file only when the host asks for them.
class Reader final : public ckpt::sdk::Reader {
 public:
  Reader(const std::string& path, ckpt::sdk::Options& options) : file_(path) {
    const std::string_view s(reinterpret_cast<const char*>(file_.data()), file_.size());
    auto bad = [&](const std::string& what) { fail(CKPT_ERR_FORMAT, "'" + path + "': " + what); };
    if (s.starts_with(kMagic) && !s.starts_with(kHeader)) fail(CKPT_ERR_UNSUPPORTED, "'" + path + "' is not hello version 2");
    if (!s.starts_with(kHeader)) bad("not a hello file");
    // Every offset is checked against the file: one cut short anywhere has no valid trailer.
    uint64_t at = 0, next = kHeader.size();
    const char* end = s.data() + s.size();
    if (s.size() < kHeader.size() + kTrailer || end[-18] != '\n' || end[-1] != '\n' ||
        std::from_chars(end - 17, end - 1, at, 16).ptr != end - 1 || at < kHeader.size() || at > s.size() - kTrailer)
      bad("no trailer naming where the skeleton starts");
    ckpt::sdk::SkeletonSource source;
    source.where = [&](const std::string& p) { return "'" + path + "', skeleton at '" + p + "': "; };
    source.max_bytes = ckpt::sdk::ReadLimits::parse(options).document_bytes_for(s.size());
    // Tensors lie in document order without overlapping, so those a file lists never add up
    // to more bytes than it holds.
    auto tensor = [&](const ckpt::sdk::Tree::Tensor& t, std::string offset, const std::string& p) {
      uint64_t o = 0;
      const char* last = offset.data() + offset.size();
      if (std::from_chars(offset.data(), last, o).ptr != last || o < next || o > at || t.nbytes > at - o)
        bad("tensor '" + p + "': its bytes at '" + offset + "' are not where the file has room for them");
      next = o + t.nbytes;
      offsets_.push_back(o);
      return offsets_.size() - 1;
    };
    tree_ = ckpt::sdk::read_skeleton(s.substr(at, s.size() - kTrailer - at), kKeys, source, tensor);
  }

  void list(const ckpt::sdk::Visitor& visitor) override { tree_.list(visitor); }
  void read_tensor(uint64_t id, std::span<std::byte> dst) override {
    if (id >= offsets_.size() || dst.size() != tree_.tensors[id].nbytes)
      fail(CKPT_ERR_INVALID_ARGUMENT, "no tensor " + std::to_string(id) + " of " + std::to_string(dst.size()) + " bytes");
    file_.read_at(offsets_[id], dst);
  }
  const void* map_tensor(uint64_t id) override { return file_.data() + offsets_.at(id); }

 private:
  ckpt::sdk::MappedFile file_;
  ckpt::sdk::Tree tree_;
  std::vector<uint64_t> offsets_;  // by tensor id: where its bytes start
};

// The plugin's entry point: what the format is called, how its files are recognised, and which
// of the ckpt document model's features it promises (the conformance kit holds it to them).
struct HelloFormat {
  static constexpr const char* name = "hello";
  static constexpr const char* long_name = "hello checkpoint (the ckpt SDK example)";
  static std::vector<std::string> extensions() { return {".hello"}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, std::string(kMagic)}}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST |
                                           CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;

  // Called on the first bytes of any file whose format is not known yet: cheap, never past `head`.
  static int identify(std::span<const uint8_t> head, uint64_t) {
    return std::string_view(reinterpret_cast<const char*>(head.data()), head.size()).starts_with(kHeader) ? 100 : 0;
  }
  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<Writer>(path);
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options& options) {
    return std::make_unique<Reader>(path, options);
  }
};

}  // namespace

CKPT_DECLARE_PLUGIN("hello", "1.0.0", HelloFormat)
