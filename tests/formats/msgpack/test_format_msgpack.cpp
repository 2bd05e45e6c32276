// What is particular to the msgpack format: files other MessagePack tools read and write,
// 64-byte aligned payloads mapped in place, escaped '$' names, typed empty arrays, and exact
// errors on corrupt files. Generic round trips are the conformance kit's job.
#include "byte_flips.hpp"
#include "scratch.hpp"
#include "terminal_text.hpp"

#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;
namespace fs = std::filesystem;
using namespace std::string_literals;

namespace {

const fs::path kHere = CKPT_MSGPACK_TEST_DIR;

// Set field by field: designated initializers warn (-Wmissing-field-initializers) while
// SaveOptions/LoadOptions have members without default initializers.
SaveOptions save_as_msgpack(bool fsync = true) {
  SaveOptions o;
  o.format = "msgpack";
  o.fsync = fsync;
  return o;
}
LoadOptions load_as_msgpack() {
  LoadOptions o;
  o.format = "msgpack";
  return o;
}
const LoadOptions kMsgpack = load_as_msgpack();

using ckpt_test::TempDir;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs a command; returns its exit status and puts its output in `out`.
int run(const std::string& command, std::string& out) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string python(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "check_python.py").string() + " " + args;
}

template <class T>
void store(std::byte* p, uint64_t i, T v) {
  std::memcpy(p + i * sizeof(T), &v, sizeof(T));
}

// The values check_python.py's pattern() expects (little-endian host).
Tensor pattern(DType d, Shape shape) {
  Tensor t = Tensor::empty(d, std::move(shape));
  std::byte* p = t.mutable_bytes().data();
  for (uint64_t i = 0; i < t.numel(); ++i) {
    const float f = (static_cast<float>(i) - 5) * 0.5f;
    const int64_t k = static_cast<int64_t>(i % 17) - 8;
    switch (d) {
      case DType::f32: store<float>(p, i, f); break;
      case DType::f64: store<double>(p, i, f); break;
      case DType::f16: store<uint16_t>(p, i, f32_to_f16(f)); break;
      case DType::bf16: store<uint16_t>(p, i, f32_to_bf16(f)); break;
      case DType::i8: store<int8_t>(p, i, static_cast<int8_t>(k)); break;
      case DType::u8: store<uint8_t>(p, i, static_cast<uint8_t>((i * 7) % 256)); break;
      case DType::i16: store<int16_t>(p, i, static_cast<int16_t>(k)); break;
      case DType::i32: store<int32_t>(p, i, static_cast<int32_t>(k)); break;
      case DType::i64: store<int64_t>(p, i, k); break;
      case DType::boolean: store<uint8_t>(p, i, i % 3 == 0); break;
      case DType::u16: store<uint16_t>(p, i, static_cast<uint16_t>(65535 - i)); break;
      case DType::u32: store<uint32_t>(p, i, static_cast<uint32_t>(0xfffffff0u + i % 16)); break;
      case DType::u64: store<uint64_t>(p, i, ~uint64_t{0} - i); break;
      case DType::f8_e4m3fn: store<uint8_t>(p, i, f32_to_f8_e4m3fn(f)); break;
      case DType::f8_e5m2: store<uint8_t>(p, i, f32_to_f8_e5m2(f)); break;
      case DType::c64: store<float>(p, 2 * i, f); store<float>(p, 2 * i + 1, -f); break;
      case DType::c128: store<double>(p, 2 * i, f); store<double>(p, 2 * i + 1, -f); break;
      default: break;  // block dtypes are not elements
    }
  }
  return t;
}

const DType kAllDtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                            DType::u8,  DType::i16, DType::i32, DType::i64,  DType::boolean};

// The document check_python.py expects (keep the two in step).
Document interop_document() {
  Document doc;
  doc.set("producer", "ckpt-test")
      .set("epoch", 3)
      .set("big", std::numeric_limits<int64_t>::max())
      .set("small", std::numeric_limits<int64_t>::min())
      .set("lr", 0.001)
      .set("neg_zero", -0.0)
      .set("inf", std::numeric_limits<double>::infinity())
      .set("ninf", -std::numeric_limits<double>::infinity())
      .set("nan", std::bit_cast<double>(0x7ff8000000000123ull))
      .set("flag", Value(true))  // a bare `true` would pick set(name, int)
      .set("ints", std::vector<int64_t>{1, -2, 300000, -5000000000})
      .set("floats", std::vector<double>{0.5, -1.5, 1e300})
      .set("bools", std::vector<bool>{true, false, true})
      .set("strings", std::vector<std::string>{"a", "\u03b2\u03b3", ""})
      .set("empty_ints", std::vector<int64_t>{})
      .set("empty_bools", std::vector<bool>{})
      .set("empty_floats", std::vector<double>{})
      .set("empty_strings", std::vector<std::string>{})
      .set("$dollar", "escaped");
  Group& state = doc.group("model").group("state");
  for (DType d : kAllDtypes) state.add_tensor("t_" + std::string(name(d)), pattern(d, {3, 5}));
  state.add_tensor("scalar", Tensor::from<float>(DType::f32, {}, {42.5f}));
  state.add_tensor("empty", Tensor::empty(DType::f32, {0, 4}));
  state.add_tensor("$dollar_tensor", pattern(DType::i32, {2}));
  state.add_tensor("medium", pattern(DType::f32, {300}));      // bin16
  state.add_tensor("large", pattern(DType::f32, {200, 100}));  // bin32
  doc.group("$meta").set("$$x", 1);
  return doc;
}

void expect_same(const Document& a, const Document& b) {
  DiffOptions exact;
  exact.ignore_meta = false;
  const DiffReport r = diff_documents(a, b, exact);
  for (const auto& e : r.entries) ADD_FAILURE() << e.path << ": " << e.detail;
}

std::vector<std::string> tensor_paths(const Document& doc) {
  std::vector<std::string> paths;
  doc.for_each_tensor([&](const std::string& p, const Tensor&) { paths.push_back(p); });
  return paths;
}

}  // namespace

TEST(MsgpackFormat, PythonMsgpackReadsWhatWeWrite) {
  TempDir tmp;
  const fs::path p = tmp.path / "interop.msgpack";
  write_document(interop_document(), p, save_as_msgpack());
  std::string out;
  EXPECT_EQ(run(python("read " + p.string()), out), 0) << out;
}

TEST(MsgpackFormat, ReadsWhatPythonMsgpackWrites) {
  TempDir tmp;
  const fs::path p = tmp.path / "python.msgpack";
  std::string out;
  ASSERT_EQ(run(python("write " + p.string()), out), 0) << out;

  const Document doc = read_document(p);  // found by extension, confirmed by identify
  EXPECT_EQ(std::get<double>(*doc.attribute("half")), 0.5);  // written as float32
  EXPECT_EQ(std::get<std::string>(*doc.attribute("name")), "python");
  EXPECT_EQ(std::get<std::vector<int64_t>>(*doc.attribute("typed")), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(std::get<std::vector<std::string>>(*doc.attribute("none")).empty());
  // Children keep the file's order; attributes came after them in the file.
  ASSERT_EQ(doc.children().size(), 2u);
  EXPECT_EQ(doc.children()[0].name, "model");
  EXPECT_EQ(doc.children()[1].name, "empty");
  EXPECT_TRUE(doc.children()[1].group().empty());

  const Group& model = *doc.find_group("model");
  ASSERT_EQ(model.children().size(), 3u);
  const Tensor& w = *model.find_tensor("w");  // no $pad: unaligned, so read rather than mapped
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  EXPECT_EQ(std::vector<float>(w.data<float>().begin(), w.data<float>().end()),
            (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(model.find_tensor("b")->data<int64_t>()[1], -2);
  EXPECT_EQ(model.find_tensor("$odd")->shape(), (Shape{0}));
}

TEST(MsgpackFormat, PayloadsStartAt64ByteOffsets) {
  TempDir tmp;
  const fs::path p = tmp.path / "a.msgpack";
  const Document doc = interop_document();
  write_document(doc, p, save_as_msgpack());
  const std::string bytes = slurp(p);
  auto reader = open(p, kMsgpack);
  for (const std::string& path : tensor_paths(doc)) {
    std::optional<Tensor> t = reader->map(path);
    ASSERT_TRUE(t) << path;
    if (t->nbytes() == 0) continue;
    // The mapping starts on a page boundary, so pointer alignment is file-offset alignment.
    const auto addr = reinterpret_cast<uintptr_t>(t->bytes().data());
    EXPECT_EQ(addr % 64, 0u) << path;
  }
  // Every $data payload: find each "$data" key and its bin header in the raw bytes.
  size_t found = 0;
  for (size_t at = bytes.find("\xa5$data"); at != std::string::npos;
       at = bytes.find("\xa5$data", at + 1)) {
    const auto tag = static_cast<uint8_t>(bytes[at + 6]);
    const size_t header = tag == 0xc4 ? 2 : tag == 0xc5 ? 3 : 5;
    EXPECT_EQ((at + 6 + header) % 64, 0u) << "payload after the $data key at byte " << at;
    ++found;
  }
  EXPECT_EQ(found, tensor_paths(doc).size());
}

TEST(MsgpackFormat, MapGivesZeroCopyViewsIntoTheFile) {
  TempDir tmp;
  const fs::path p = tmp.path / "a.msgpack";
  const Document doc = interop_document();
  write_document(doc, p, save_as_msgpack());

  auto reader = open(p, kMsgpack);
  std::optional<Tensor> a = reader->map("model/state/large");
  std::optional<Tensor> b = reader->map("model/state/large");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->storage_kind(), StorageKind::mapped);
  EXPECT_EQ(a->bytes().data(), b->bytes().data());  // the same bytes, not two copies
  EXPECT_TRUE(a->bit_equal(*doc.find_tensor_path("model/state/large")));
  // A view outlives the reader handle it came from.
  reader.reset();
  EXPECT_TRUE(a->bit_equal(*doc.find_tensor_path("model/state/large")));

  // read_document maps by default: every non-empty tensor views the file.
  const Document loaded = read_document(p, kMsgpack);
  expect_same(doc, loaded);
  loaded.for_each_tensor([](const std::string& path, const Tensor& t) {
    EXPECT_EQ(t.storage_kind(), StorageKind::mapped) << path;
  });
  // read() copies, into owned storage.
  Tensor copy = open(p, kMsgpack)->read("model/state/t_bf16");
  EXPECT_EQ(copy.storage_kind(), StorageKind::owned);
  EXPECT_TRUE(copy.bit_equal(*doc.find_tensor_path("model/state/t_bf16")));
}

TEST(MsgpackFormat, AttributesRoundTripBitExact) {
  TempDir tmp;
  const fs::path p = tmp.path / "a.msgpack";
  Document doc;
  doc.set("snan", std::bit_cast<double>(0x7ff0000000000001ull))
      .set("qnan_payload", std::bit_cast<double>(0xfff8dead0000beefull))
      .set("neg_zero", -0.0)
      .set("integral", 2.0)  // msgpack-cxx's pack_double would write these two as ints
      .set("two_pow_64", 18446744073709551616.0)
      .set("tiny", std::numeric_limits<double>::denorm_min())
      .set("inf", std::numeric_limits<double>::infinity())
      .set("int_min", std::numeric_limits<int64_t>::min())
      .set("int_max", std::numeric_limits<int64_t>::max())
      .set("minus_one", -1)
      .set("bytes", std::string("a\0b\xff\xfe", 5))  // any bytes, NUL included
      .set("float_array", std::vector<double>{-0.0, 3.0, std::bit_cast<double>(0x7ff4000000000000ull)})
      .set("int_array", std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 0, 127, 128})
      .set("empty_ints", std::vector<int64_t>{})
      .set("empty_bools", std::vector<bool>{})
      .set("empty_floats", std::vector<double>{})
      .set("empty_strings", std::vector<std::string>{});
  write_document(doc, p, save_as_msgpack());
  expect_same(doc, read_document(p, kMsgpack));
  for (const char* name : {"empty_ints", "empty_bools", "empty_floats", "empty_strings"})
    EXPECT_EQ(value_type(*read_document(p, kMsgpack).attribute(name)),
              value_type(*doc.attribute(name)))
        << name;
}

TEST(MsgpackFormat, DollarNamesAreEscapedOnDiskAndRestored) {
  TempDir tmp;
  const fs::path p = tmp.path / "a.msgpack";
  Document doc;
  doc.set("$format", "not the format key").set("$", 1).set("$$", 2);
  Group& g = doc.group("$attrs");  // a group named like the attributes key
  g.set("$data", true);
  g.add_tensor("$dtype", Tensor::from<int32_t>(DType::i32, {1}, {7}));
  doc.add_tensor("$version", Tensor::from<float>(DType::f32, {}, {1.0f}));
  doc.add_group("$$").add_group("$");
  write_document(doc, p, save_as_msgpack());

  const std::string bytes = slurp(p);
  for (const char* escaped : {"\xa8$$format", "\xa2$$", "\xa3$$$", "\xa7$$attrs", "\xa6$$data",
                              "\xa7$$dtype", "\xa9$$version"})
    EXPECT_NE(bytes.find(escaped), std::string::npos) << escaped;
  expect_same(doc, read_document(p, kMsgpack));
}

// The writer refuses every name the reader refuses (one check serves both): a name from a
// format whose names are bytes (GGUF, pickle) must fail the conversion, not make a file that
// ckpt cannot open. (A name with NUL, which the reader refuses too, cannot reach a writer:
// ckpt::Document refuses it first.)
TEST(MsgpackFormat, NamesTheReaderRefusesAreNotWritten) {
  TempDir tmp;
  const std::string bad[] = {"w\xff\xfe", "\xed\xa0\x80" /* a surrogate */};
  for (const std::string& name : bad) {
    Document tensor, group, attribute;
    tensor.group("model").add_tensor(name, pattern(DType::f32, {2}));
    group.group(name);
    attribute.group("model").set(name, int64_t{1});
    for (const Document* doc : {&tensor, &group, &attribute}) {
      const fs::path out = tmp.path / "bad.msgpack";
      try {
        write_document(*doc, out, save_as_msgpack(false));
        ADD_FAILURE() << "wrote a file with the name '" << name << "'";
        read_document(out, kMsgpack);  // what the review found: the reader refused it
      } catch (const UnsupportedError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("is not valid UTF-8"), std::string::npos) << what;
        for (char c : what) EXPECT_GE(static_cast<unsigned char>(c), 0x20u) << "raw control byte in: " << what;
      }
      EXPECT_FALSE(fs::exists(out));
    }
  }
}

// Names reach messages escaped (C0, C1 and bytes outside UTF-8 as \xNN) and cut on a
// character boundary, whatever the file holds.
TEST(MsgpackFormat, MessagesShowNamesEscaped) {
  TempDir tmp;
  auto str = [](std::string_view s) {
    std::string out(1, static_cast<char>(0xd9));  // str8
    out.push_back(static_cast<char>(s.size()));
    return out + std::string(s);
  };
  std::string accents;
  for (int i = 0; i < 70; ++i) accents += "\xc3\xa9";
  // {"$format": "ckpt-msgpack", "$version": 1, name: {}}, every name holding '/'.
  const std::string head = "\x83" + str("$format") + str("ckpt-msgpack") + str("$version") + "\x01";
  for (const std::string& name : {"\x1b[2J\x07/x"s, accents + "/", "\xc2\x9b" "31m/"s}) {
    spit(tmp.path / "m.msgpack", head + str(name) + "\x80");
    try {
      read_document(tmp.path / "m.msgpack", kMsgpack);
      ADD_FAILURE() << "read a name with '/'";
    } catch (const FormatError& e) {
      ckpt_test::expect_terminal_safe(e.what());
    }
  }
}

// `ckpt inspect` prints names and strings from the file: escaped, so that a file cannot drive
// the terminal (ESC, C1 controls) or print bytes that are not text.
TEST(MsgpackFormat, InspectPrintsControlCharactersEscaped) {
  TempDir tmp;
  // {"$format": "ckpt-msgpack", "$version": 1, "$attrs": {"\x1b]0;t\x07": "\xc2\x9b" "2J\xff"}, "\x1b[2J": {}}
  const std::string file = "\x84\xa7$format\xac" "ckpt-msgpack\xa8$version\x01\xa6$attrs\x81\xa6\x1b]0;t\x07\xa5\xc2\x9b" "2J\xff"
                           "\xa4\x1b[2J\x80"s;
  spit(tmp.path / "esc.msgpack", file);
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_CLI) + " inspect " + (tmp.path / "esc.msgpack").string(), out), 0) << out;
  EXPECT_NE(out.find("\\x1b[2J/"), std::string::npos) << out;
  EXPECT_NE(out.find("@\\x1b]0;t\\x07 = "), std::string::npos) << out;
  EXPECT_NE(out.find("\\xc2\\x9b2J\\xff"), std::string::npos) << out;
  for (char c : out) EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << out;
  EXPECT_EQ(out.find("\x9b"), std::string::npos) << out;
}

// diff and verify print tensor paths and problems from files as escaped as inspect does.
TEST(MsgpackFormat, DiffAndVerifyPrintControlCharactersEscaped) {
  TempDir tmp;
  Document a, b;
  a.add_tensor("\x1b[2J\xc2\x9bw", Tensor::from<float>(DType::f32, {2}, {1.0f, 2.0f}));
  b.add_tensor("\x1b[2J\xc2\x9bw", Tensor::from<float>(DType::f32, {2}, {1.0f, 3.0f}));
  write_document(a, tmp.path / "a.msgpack", save_as_msgpack());
  write_document(b, tmp.path / "b.msgpack", save_as_msgpack());
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_CLI) + " diff " + (tmp.path / "a.msgpack").string() + " " + (tmp.path / "b.msgpack").string(), out), 1)
      << out;
  EXPECT_NE(out.find("\\x1b[2J\\xc2\\x9bw"), std::string::npos) << out;
  ckpt_test::expect_terminal_safe(out.substr(0, out.find('\n')));
  // A damaged tensor of a file that records hashes (convert records them): verify names it.
  ASSERT_EQ(run(std::string(CKPT_CLI) + " convert " + (tmp.path / "a.msgpack").string() + " " + (tmp.path / "c.msgpack").string(), out), 0)
      << out;
  std::string bytes = slurp(tmp.path / "c.msgpack");
  const size_t two = bytes.find(std::string("\x00\x00\x00\x40", 4));  // a's 2.0f
  ASSERT_NE(two, std::string::npos);
  bytes[two + 3] = '\x41';
  spit(tmp.path / "c.msgpack", bytes);
  ASSERT_EQ(run(std::string(CKPT_CLI) + " verify " + (tmp.path / "c.msgpack").string(), out), 1) << out;
  EXPECT_NE(out.find("\\x1b[2J"), std::string::npos) << out;
  for (char c : out) EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << out;
}

TEST(MsgpackFormat, OutputIsDeterministic) {
  TempDir tmp;
  write_document(interop_document(), tmp.path / "a.msgpack", save_as_msgpack());
  write_document(interop_document(), tmp.path / "b.msgpack", save_as_msgpack());
  EXPECT_EQ(slurp(tmp.path / "a.msgpack"), slurp(tmp.path / "b.msgpack"));
}

TEST(MsgpackFormat, IdentifiedByContentWhateverTheName) {
  TempDir tmp;
  Document small;
  small.set("x", 1);
  Document wide;  // > 15 root entries: a map16 header instead of a fixmap
  for (int i = 0; i < 20; ++i) wide.add_group("g" + std::to_string(i));
  for (auto& [name, doc] : {std::pair{"small", &small}, std::pair{"wide", &wide}}) {
    const fs::path p = tmp.path / (std::string(name) + ".msgpack");
    write_document(*doc, p, save_as_msgpack());
    const fs::path renamed = tmp.path / (std::string(name) + ".bin");
    fs::copy_file(p, renamed);
    EXPECT_EQ(open(renamed)->format().name, "msgpack") << name;
    expect_same(*doc, read_document(renamed));
  }
  EXPECT_EQ(static_cast<uint8_t>(slurp(tmp.path / "wide.msgpack")[0]), 0xde);
}

TEST(MsgpackFormat, LargeTensorRoundTrips) {
  TempDir tmp;
  const fs::path p = tmp.path / "big.msgpack";
  Document doc;
  const int64_t n = (64 << 20) / 4 + 1;  // just over 64 MiB of f32
  doc.add_tensor("big", pattern(DType::f32, {n}));
  doc.add_tensor("after", pattern(DType::i8, {3}));
  write_document(doc, p, save_as_msgpack(false));
  auto reader = open(p, kMsgpack);
  std::optional<Tensor> big = reader->map("big");
  ASSERT_TRUE(big);
  EXPECT_TRUE(big->bit_equal(*doc.find_tensor("big")));
  // Copies of large tensors take another path (pread) than small ones (memcpy).
  std::vector<std::byte> buffer(big->nbytes());
  reader->read_into("big", buffer);
  EXPECT_EQ(std::memcmp(buffer.data(), doc.find_tensor("big")->bytes().data(), buffer.size()), 0);
  EXPECT_TRUE(reader->read("after").bit_equal(*doc.find_tensor("after")));
}

TEST(MsgpackFormat, TensorOver4GiBIsUnsupportedNotCorrupt) {
  // A msgpack bin holds < 4 GiB. Untouched anonymous pages cost no memory.
  const size_t n = (size_t{1} << 32) + 8;
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  TempDir tmp;
  Document doc;
  doc.add_tensor("huge", Tensor::borrow(DType::u8, {static_cast<int64_t>(n)}, static_cast<const void*>(p)));
  EXPECT_THROW(write_document(doc, tmp.path / "huge.msgpack", save_as_msgpack(false)),
               UnsupportedError);
  EXPECT_FALSE(fs::exists(tmp.path / "huge.msgpack"));
  ::munmap(p, n);
}

// corrupt/ holds hand-made bad files (make_corrupt.py); expected.tsv says what each must raise.
TEST(MsgpackFormat, GoldenCorruptFilesGiveErrorsThatNameThePlace) {
  const fs::path dir = kHere / "corrupt";
  std::ifstream tsv(dir / "expected.tsv");
  ASSERT_TRUE(tsv) << "missing " << dir / "expected.tsv";
  std::set<std::string> listed;
  std::string line;
  while (std::getline(tsv, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    ASSERT_GE(fields.size(), 3u) << line;
    const std::string& file = fields[0];
    const std::string& want = fields[1];
    listed.insert(file);
    std::string got = "no exception", message;
    try {
      read_document(dir / file, kMsgpack);
    } catch (const LimitError& e) {
      got = "LimitError", message = e.what();
    } catch (const FormatError& e) {
      got = "FormatError", message = e.what();
    } catch (const UnsupportedError& e) {
      got = "UnsupportedError", message = e.what();
    } catch (const std::exception& e) {
      got = std::string("another exception: ") + e.what();
    }
    EXPECT_EQ(got, want) << file << ": " << message;
    for (size_t i = 2; i < fields.size(); ++i)
      EXPECT_NE(message.find(fields[i]), std::string::npos)
          << file << ": message lacks \"" << fields[i] << "\"\n  message: " << message;
    EXPECT_NE(message.find(file), std::string::npos) << "the message names the file: " << message;
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".msgpack") {
      EXPECT_TRUE(listed.count(e.path().filename().string()))
          << e.path().filename() << " has no line in expected.tsv";
    }
  }
  EXPECT_GE(listed.size(), 20u);
}

namespace {

// A small file with every kind of item: groups, typed empty arrays, all header widths.
std::string small_valid_file(const fs::path& dir) {
  Document doc;
  doc.set("name", "x").set("ints", std::vector<int64_t>{1, -300}).set("f", 0.5);
  doc.set("none", std::vector<std::string>{}).set("bools", std::vector<bool>{true});
  Group& g = doc.group("model");
  g.set("$k", "v");
  g.add_tensor("w", pattern(DType::f32, {2, 3}));
  g.add_tensor("s", pattern(DType::i64, {}));
  g.add_group("empty");
  doc.add_tensor("medium", pattern(DType::u8, {300}));
  write_document(doc, dir / "valid.msgpack", save_as_msgpack(false));
  return slurp(dir / "valid.msgpack");
}

// Reads a whole document, tensors included; true when it parsed.
bool read_all(const fs::path& p, std::string& error) {
  try {
    read_document(p, kMsgpack);
    return true;
  } catch (const FormatError&) {  // LimitError included
    error.clear();
  } catch (const UnsupportedError&) {
    error.clear();
  } catch (const std::exception& e) {
    error = e.what();
  }
  return false;
}

}  // namespace

TEST(MsgpackFormat, EveryTruncationIsAFormatError) {
  TempDir tmp;
  const std::string valid = small_valid_file(tmp.path);
  const auto keep_loaded = open(tmp.path / "valid.msgpack", kMsgpack);  // no reload per file
  const fs::path p = tmp.path / "cut.msgpack";
  for (size_t len = 0; len < valid.size(); ++len) {
    spit(p, std::string_view(valid).substr(0, len));
    std::string error = "no error";
    EXPECT_FALSE(read_all(p, error)) << "a " << len << "-byte prefix was accepted";
    EXPECT_TRUE(error.empty()) << "prefix of " << len << " bytes: " << error;
  }
}

TEST(MsgpackFormat, FlippedBytesGiveTypedErrorsOrValidDocuments) {
  TempDir tmp;
  const std::string valid = small_valid_file(tmp.path);
  const auto keep_loaded = open(tmp.path / "valid.msgpack", kMsgpack);  // no reload per file
  const fs::path p = tmp.path / "flipped.msgpack";
  // Tensor payloads are opaque bytes (flipping them changes values, not structure): skip them.
  std::vector<bool> payload(valid.size());
  for (size_t at = valid.find("\xa5$data"); at != std::string::npos;
       at = valid.find("\xa5$data", at + 1)) {
    const auto tag = static_cast<uint8_t>(valid[at + 6]);
    ASSERT_TRUE(tag == 0xc4 || tag == 0xc5) << "small_valid_file has only bin8 and bin16";
    const size_t header = tag == 0xc4 ? 2 : 3;
    size_t n = static_cast<uint8_t>(valid[at + 7]);
    if (tag == 0xc5) n = n << 8 | static_cast<uint8_t>(valid[at + 8]);
    for (size_t k = 0; k < n; ++k) payload[at + 6 + header + k] = true;
  }
  ckpt_test::ByteFlips flips;
  flips.masks = {0x01, 0x80, 0xff};
  flips.skip = [&](size_t at) { return payload[at]; };
  ckpt_test::flip_every_byte(valid, p, flips, [&](size_t at, uint8_t mask) {
    std::string error;
    read_all(p, error);
    EXPECT_TRUE(error.empty()) << "byte " << at << " ^ " << int(mask) << ": " << error;
  });
}
