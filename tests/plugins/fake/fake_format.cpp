// A small but complete format for tests: every dtype, attribute type and nesting depth, tensors
// aligned so they map, and the same bytes for the same document. It exists so the registry tests
// and the conformance kit have a plugin that depends on nothing being written elsewhere. One
// source builds several test plugins; each names itself through compile definitions.
//
// Layout (little-endian): MAGIC, then records, then 'Z' as the last byte.
//   'G' name            begins a group (the first one is the root, named "")
//   'E'                 ends the innermost group
//   'A' name type count payload
//   'T' name dtype rank shape[rank] nbytes, zeros up to a multiple of 64, data
// A name is u32 length + bytes; a string is u64 length + bytes; scalars take 8 bytes, bools in
// arrays take one.
#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>

#include <bit>

#if !defined(FAKE_PLUGIN) || !defined(FAKE_FORMAT) || !defined(FAKE_EXT) || !defined(FAKE_MAGIC)
#error "define FAKE_PLUGIN, FAKE_FORMAT, FAKE_EXT and FAKE_MAGIC (8 characters)"
#endif

namespace {

using ckpt::sdk::fail;

constexpr std::string_view kMagic = FAKE_MAGIC;
static_assert(kMagic.size() == 8, "FAKE_MAGIC must be 8 characters");
constexpr uint64_t kAlign = 64;
// Deeper than any document the host accepts (4096), shallow enough to bound memory.
constexpr size_t kMaxDepth = 10000;

// ---- writing ------------------------------------------------------------------------------

class FakeWriter : public ckpt::sdk::Writer {
 public:
  explicit FakeWriter(const std::string& path) : out_(path) { out_.write(kMagic); }

  void begin_group(std::string_view name, uint64_t, uint64_t) override {
    if (finished_ || (depth_ == 0 && root_done_)) fail(CKPT_ERR_INVALID_ARGUMENT, "a second root group");
    out_.put('G');
    name_(name);
    ++depth_;
  }
  void end_group() override {
    if (depth_ == 0) fail(CKPT_ERR_INVALID_ARGUMENT, "end_group without begin_group");
    out_.put('E');
    if (--depth_ == 0) root_done_ = true;
  }
  void attribute(std::string_view name, const ckpt_value& v) override {
    in_group("attribute");
    out_.put('A');
    name_(name);
    u32(v.type);
    // Scalars ignore `count`; writing 0 keeps the bytes a function of the document alone.
    u64(v.type >= CKPT_VALUE_BOOL_ARRAY ? v.count : 0);
    switch (v.type) {
      case CKPT_VALUE_BOOL: u64(v.u.b ? 1 : 0); break;
      case CKPT_VALUE_INT64: u64(static_cast<uint64_t>(v.u.i)); break;
      case CKPT_VALUE_FLOAT64: u64(std::bit_cast<uint64_t>(v.u.f)); break;
      case CKPT_VALUE_STRING: str(v.u.s); break;
      case CKPT_VALUE_BOOL_ARRAY:
        for (uint64_t i = 0; i < v.count; ++i) out_.put(v.u.bools[i] ? 1 : 0);
        break;
      case CKPT_VALUE_INT64_ARRAY:
        for (uint64_t i = 0; i < v.count; ++i) u64(static_cast<uint64_t>(v.u.ints[i]));
        break;
      case CKPT_VALUE_FLOAT64_ARRAY:
        for (uint64_t i = 0; i < v.count; ++i) u64(std::bit_cast<uint64_t>(v.u.floats[i]));
        break;
      case CKPT_VALUE_STRING_ARRAY:
        for (uint64_t i = 0; i < v.count; ++i) str(v.u.strings[i]);
        break;
      default:
        fail(CKPT_ERR_UNSUPPORTED, "attribute type " + std::to_string(v.type));
    }
  }
  void tensor(const ckpt::sdk::TensorInfo& t, std::span<const std::byte> data) override {
    in_group("tensor");
    size_t item = ckpt::sdk::dtype_size(t.dtype);
    if (item == 0) fail(CKPT_ERR_UNSUPPORTED, "dtype " + std::to_string(t.dtype));
    if (ckpt::sdk::checked_nbytes(t.shape, item, std::string(t.name)) != data.size())
      fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(t.name) + "': size does not match its shape");
    out_.put('T');
    name_(t.name);
    u32(t.dtype);
    u32(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) u64(static_cast<uint64_t>(d));
    u64(data.size());
    static const char zeros[kAlign] = {};
    out_.write(zeros, (kAlign - out_.offset() % kAlign) % kAlign);
    out_.write(data.data(), data.size());
  }
  void finish() override {
    if (depth_ != 0 || !root_done_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish inside a group");
    out_.put('Z');
    out_.close();
    finished_ = true;
  }

 private:
  void in_group(const char* what) {
    if (depth_ == 0) fail(CKPT_ERR_INVALID_ARGUMENT, std::string(what) + " outside any group");
  }
  void u32(uint32_t x) {
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(x >> (8 * i));
    out_.write(b, 4);
  }
  void u64(uint64_t x) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(x >> (8 * i));
    out_.write(b, 8);
  }
  void name_(std::string_view n) {
    u32(static_cast<uint32_t>(n.size()));
    out_.write(n);
  }
  void str(ckpt_str s) {
    u64(s.size);
    out_.write(s.data, s.size);
  }

  ckpt::sdk::OutputFile out_;
  size_t depth_ = 0;
  bool root_done_ = false;
  bool finished_ = false;
};

// ---- reading ------------------------------------------------------------------------------

// Bounds-checked little-endian reads over the mapped file.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& path) : b_(bytes), path_(path) {}
  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  [[noreturn]] void bad(const std::string& what) const {
    fail(CKPT_ERR_FORMAT, "'" + path_ + "' at offset " + std::to_string(pos_) + ": " + what);
  }
  void need(uint64_t n, const char* what) const {
    if (n > left())
      bad(std::string(what) + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
  }
  uint8_t u8(const char* what) {
    need(1, what);
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t x = 0;
    for (int i = 0; i < 4; ++i) x |= static_cast<uint32_t>(b_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return x;
  }
  uint64_t u64(const char* what) {
    need(8, what);
    uint64_t x = 0;
    for (int i = 0; i < 8; ++i) x |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return x;
  }
  std::string bytes(uint64_t n, const char* what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data()) + pos_, n);
    pos_ += n;
    return s;
  }
  std::string name() { return bytes(u32("name length"), "name"); }
  std::string str() { return bytes(u64("string length"), "string"); }
  void skip(uint64_t n, const char* what) {
    need(n, what);
    pos_ += n;
  }

 private:
  std::span<const std::byte> b_;
  std::string path_;
  size_t pos_ = 0;
};

struct Attr {
  uint32_t type = 0;
  uint64_t scalar = 0;
  std::string s;
  std::vector<uint8_t> bools;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
};

struct TensorRec {
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  uint64_t offset = 0;
};

struct Event {
  char kind;
  std::string name;
  size_t index = 0;  // into attrs_ or tensors_
};

class FakeReader : public ckpt::sdk::Reader {
 public:
  explicit FakeReader(const std::string& path) : file_(path) { parse(); }

  void list(const ckpt::sdk::Visitor& v) override {
    for (const auto& e : events_) {
      switch (e.kind) {
        case 'G': v.begin_group(e.name); break;
        case 'E': v.end_group(); break;
        case 'A': emit(v, e.name, attrs_[e.index]); break;
        case 'T': {
          const auto& t = tensors_[e.index];
          v.tensor(e.name, t.dtype, t.shape, t.nbytes, e.index);
          break;
        }
      }
    }
  }
  void read_tensor(uint64_t id, std::span<std::byte> dst) override {
    const TensorRec& t = at(id);
    if (dst.size() != t.nbytes)
      fail(CKPT_ERR_INVALID_ARGUMENT, "read_tensor: buffer of " + std::to_string(dst.size()) + " bytes for " +
                                          std::to_string(t.nbytes));
    if (t.nbytes) std::memcpy(dst.data(), file_.data() + t.offset, t.nbytes);
  }
  const void* map_tensor(uint64_t id) override { return file_.data() + at(id).offset; }

 private:
  const TensorRec& at(uint64_t id) const {
    if (id >= tensors_.size()) fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id));
    return tensors_[id];
  }

  static void emit(const ckpt::sdk::Visitor& v, const std::string& name, const Attr& a) {
    ckpt_value val{};
    std::vector<ckpt_str> strs;
    switch (a.type) {
      case CKPT_VALUE_BOOL: val = ckpt::sdk::make_bool(a.scalar != 0); break;
      case CKPT_VALUE_INT64: val = ckpt::sdk::make_int(static_cast<int64_t>(a.scalar)); break;
      case CKPT_VALUE_FLOAT64: val = ckpt::sdk::make_float(std::bit_cast<double>(a.scalar)); break;
      case CKPT_VALUE_STRING: val = ckpt::sdk::make_string(a.s); break;
      case CKPT_VALUE_BOOL_ARRAY: val = ckpt::sdk::make_bools(a.bools); break;
      case CKPT_VALUE_INT64_ARRAY: val = ckpt::sdk::make_ints(a.ints); break;
      case CKPT_VALUE_FLOAT64_ARRAY: val = ckpt::sdk::make_floats(a.floats); break;
      default:
        for (const auto& s : a.strings) strs.push_back({s.data(), s.size()});
        val = ckpt::sdk::make_strings(strs);
    }
    v.attribute(name, val);
  }

  void parse() {
    Cursor c(file_.bytes(), file_.path());
    if (c.bytes(kMagic.size(), "magic") != kMagic) c.bad("not a " FAKE_FORMAT " file (bad magic)");
    size_t depth = 0;
    bool root_done = false;
    for (;;) {
      size_t at = c.pos();
      char kind = static_cast<char>(c.u8("record kind"));
      if (kind == 'Z') break;
      if (root_done) c.bad("record after the root group");
      if (kind != 'G' && depth == 0) c.bad("record outside the root group");
      Event e{kind, {}};
      switch (kind) {
        case 'G':
          e.name = c.name();
          if (++depth > kMaxDepth) c.bad("groups nested too deep");
          break;
        case 'E':
          if (--depth == 0) root_done = true;
          break;
        case 'A':
          e.name = c.name();
          e.index = attrs_.size();
          attrs_.push_back(attribute(c));
          break;
        case 'T':
          e.name = c.name();
          e.index = tensors_.size();
          tensors_.push_back(tensor(c));
          break;
        default:
          c.bad("unknown record kind " + std::to_string(static_cast<unsigned char>(kind)) + " at " +
                std::to_string(at));
      }
      events_.push_back(std::move(e));
    }
    if (!root_done) c.bad("the file ends inside a group");
    if (c.left() != 0) c.bad(std::to_string(c.left()) + " bytes after the end marker");
  }

  static Attr attribute(Cursor& c) {
    Attr a;
    a.type = c.u32("attribute type");
    uint64_t n = c.u64("attribute count");
    // Every element takes at least one byte, so a count beyond what is left is a lie.
    auto count = [&](uint64_t elem) {
      if (n > c.left() / elem) c.bad("attribute array of " + std::to_string(n) + " elements");
    };
    switch (a.type) {
      case CKPT_VALUE_BOOL:
      case CKPT_VALUE_INT64:
      case CKPT_VALUE_FLOAT64:
        a.scalar = c.u64("attribute value");
        if (a.type == CKPT_VALUE_BOOL && a.scalar > 1) c.bad("bool attribute holds " + std::to_string(a.scalar));
        break;
      case CKPT_VALUE_STRING: a.s = c.str(); break;
      case CKPT_VALUE_BOOL_ARRAY:
        count(1);
        for (uint64_t i = 0; i < n; ++i) {
          uint8_t b = c.u8("bool");
          if (b > 1) c.bad("bool array element holds " + std::to_string(b));
          a.bools.push_back(b);
        }
        break;
      case CKPT_VALUE_INT64_ARRAY:
        count(8);
        for (uint64_t i = 0; i < n; ++i) a.ints.push_back(static_cast<int64_t>(c.u64("int64")));
        break;
      case CKPT_VALUE_FLOAT64_ARRAY:
        count(8);
        for (uint64_t i = 0; i < n; ++i) a.floats.push_back(std::bit_cast<double>(c.u64("float64")));
        break;
      case CKPT_VALUE_STRING_ARRAY:
        count(8);
        for (uint64_t i = 0; i < n; ++i) a.strings.push_back(c.str());
        break;
      default:
        c.bad("unknown attribute type " + std::to_string(a.type));
    }
    return a;
  }

  static TensorRec tensor(Cursor& c) {
    TensorRec t;
    t.dtype = c.u32("dtype");
    size_t item = ckpt::sdk::dtype_size(t.dtype);
    if (item == 0) c.bad("unknown dtype " + std::to_string(t.dtype));
    uint32_t rank = c.u32("rank");
    if (rank > 64) c.bad("rank " + std::to_string(rank));
    for (uint32_t i = 0; i < rank; ++i) t.shape.push_back(static_cast<int64_t>(c.u64("dimension")));
    t.nbytes = c.u64("tensor size");
    if (ckpt::sdk::checked_nbytes(t.shape, item, "tensor") != t.nbytes) c.bad("tensor size does not match its shape");
    c.skip((kAlign - c.pos() % kAlign) % kAlign, "padding");
    t.offset = c.pos();
    c.skip(t.nbytes, "tensor data");
    return t;
  }

  ckpt::sdk::MappedFile file_;
  std::vector<Event> events_;
  std::vector<Attr> attrs_;
  std::vector<TensorRec> tensors_;
};

struct FakeFormat {
  static constexpr const char* name = FAKE_FORMAT;
  static constexpr const char* long_name = "ckpt test format " FAKE_FORMAT;
  static std::vector<std::string> extensions() { return {FAKE_EXT}; }
  static std::vector<ckpt::sdk::Magic> magic() { return {{0, std::string(kMagic)}}; }
  static constexpr uint32_t capabilities = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
                                           CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS |
                                           CKPT_CAP_LAZY_LIST | CKPT_CAP_DETERMINISTIC;
  static constexpr uint32_t dtypes = CKPT_DTYPES_ALL;
  static int identify(std::span<const uint8_t> head, uint64_t) {
    return head.size() >= kMagic.size() && std::memcmp(head.data(), kMagic.data(), kMagic.size()) == 0 ? 100 : 0;
  }
  static std::unique_ptr<ckpt::sdk::Writer> open_writer(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<FakeWriter>(path);
  }
  static std::unique_ptr<ckpt::sdk::Reader> open_reader(const std::string& path, ckpt::sdk::Options&) {
    return std::make_unique<FakeReader>(path);
  }
};

}  // namespace

CKPT_DECLARE_PLUGIN(FAKE_PLUGIN, "1.0.0", FakeFormat)
