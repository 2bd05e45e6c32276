// The numpy plugin against NumPy itself (Debian's python3-numpy): files numpy writes read bit
// for bit (every dtype, both byte orders, C and Fortran order, 0-d and empty arrays, header
// versions 1.0, 2.0 and 3.0, np.savez and np.savez_compressed with Flax's '/' keys); files ckpt
// writes load in numpy.load(allow_pickle=False) equal and byte for byte as np.save writes each
// array; conversions through safetensors, msgpack and pytorch come back equal; hostile files
// are refused with typed errors. Generic round trips are the conformance kit's job.
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <gtest/gtest.h>

#include "sanitizers.hpp"
#include "scratch.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <tuple>
#include <map>
#include <random>
#include <sstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

const fs::path kHere = CKPT_NUMPY_TEST_DIR;

using ckpt_test::TempDir;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

using ckpt_test::run;

std::string side(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "numpy_side.py").string() + " " + args;
}

Format numpy_format() { return Registry::global().get("numpy"); }

// The format's own reader, as the host's load uses it.
Document read_numpy(const fs::path& p, bool map = false) { return numpy_format().open_reader(p, {})->load(map); }

std::vector<std::vector<std::string>> tsv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::vector<std::string> row;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) row.push_back(line.substr(start, tab - start));
    row.push_back(line.substr(start));
    rows.push_back(row);
  }
  return rows;
}

std::string shape_text(const Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out;
}

// Names, kinds, order, dtypes, shapes and bytes; empty when equal.
std::string differences(const Group& a, const Group& b, const std::string& at = "") {
  std::string out;
  if (a.children().size() != b.children().size())
    return at + ": " + std::to_string(a.children().size()) + " members against " + std::to_string(b.children().size()) + "\n";
  for (size_t i = 0; i < a.children().size(); ++i) {
    const Node& x = a.children()[i];
    const Node& y = b.children()[i];
    const std::string p = at + "/" + x.name;
    if (x.name != y.name || x.is_group() != y.is_group()) {
      out += p + ": against " + y.name + "\n";
      continue;
    }
    if (x.is_group()) {
      out += differences(x.group(), y.group(), p);
      continue;
    }
    const Tensor& s = x.tensor();
    const Tensor& t = y.tensor();
    if (s.dtype() != t.dtype() || s.shape() != t.shape())
      out += p + ": " + std::string(name(s.dtype())) + "[" + shape_text(s.shape()) + "] against " + std::string(name(t.dtype())) +
             "[" + shape_text(t.shape()) + "]\n";
    else if (s.nbytes() && std::memcmp(s.bytes().data(), t.bytes().data(), s.nbytes()) != 0)
      out += p + ": bytes differ\n";
  }
  return out;
}

Tensor pattern(DType d, Shape shape, unsigned seed) {
  Tensor t = Tensor::zeros(d, std::move(shape));
  auto b = t.mutable_bytes();
  std::mt19937 rng(seed);
  for (auto& x : b) x = static_cast<std::byte>(d == DType::boolean ? rng() & 1 : rng() & 0xff);
  return t;
}

const std::vector<DType> kNumpyDtypes = {DType::boolean, DType::i8,  DType::u8,  DType::i16, DType::u16,
                                         DType::i32,     DType::u32, DType::i64, DType::u64, DType::f16,
                                         DType::f32,     DType::f64, DType::c64, DType::c128};

// One set of numpy-made files for the whole suite.
class NumpyFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    std::string out;
    ASSERT_EQ(run(side("make " + dir_->path.string()), out), 0) << out;
    ASSERT_EQ(run(side("attacks " + (dir_->path / "attacks").string()), out), 0) << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path dir() { return dir_->path; }
  static TempDir* dir_;
};
TempDir* NumpyFiles::dir_ = nullptr;

TEST_F(NumpyFiles, EveryFileNumpyWroteReadsBitExactly) {
  const auto rows = tsv(dir() / "manifest.tsv");
  ASSERT_GT(rows.size(), 60u);
  std::map<std::string, Document> docs, mapped;
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), 5u);
    const fs::path file = dir() / r[0];
    if (!docs.count(r[0])) {
      ASSERT_NO_THROW(docs[r[0]] = read_numpy(file)) << r[0];
      ASSERT_NO_THROW(mapped[r[0]] = read_numpy(file, true)) << r[0];
    }
    for (const Document* d : {&docs[r[0]], &mapped[r[0]]}) {
      const Tensor* t = d->find_tensor_path(r[1]);
      ASSERT_TRUE(t) << r[0] << " has no " << r[1];
      EXPECT_EQ(name(t->dtype()), r[2]) << r[0] << ":" << r[1];
      EXPECT_EQ(shape_text(t->shape()), r[3]) << r[0] << ":" << r[1];
      const std::string want = slurp(dir() / r[4]);
      ASSERT_EQ(t->nbytes(), want.size()) << r[0] << ":" << r[1];
      EXPECT_TRUE(want.empty() || std::memcmp(t->bytes().data(), want.data(), want.size()) == 0) << r[0] << ":" << r[1];
    }
  }
  // A .npy file is the one tensor "array"; np.savez's '/' keys are groups.
  EXPECT_EQ(docs["v3.npy"].children().size(), 1u);
  EXPECT_EQ(docs["v3.npy"].children()[0].name, "array");
  const Document& flax = docs["flax.npz"];
  ASSERT_TRUE(flax.find_group_path("params/Dense_0"));
  EXPECT_EQ(flax.find_group_path("params/Dense_0")->children().size(), 2u);
  EXPECT_TRUE(flax.find_tensor("step"));
  EXPECT_EQ(differences(flax, docs["flax_compressed.npz"]), "");
}

// ckpt's members start their data at a multiple of 64 in the file (the zip entry's data is
// 64-byte aligned by an "FB" padding field, the .npy header is a multiple of 64), so stored
// arrays map in place. numpy's own members land wherever the zip headers end: the host declines
// a view the dtype cannot use and reads them instead, with the same bytes.
TEST_F(NumpyFiles, StoredLittleEndianArraysMapInPlace) {
  TempDir tmp;
  const Document d = read_numpy(dir() / "flax.npz");
  const fs::path ours = tmp.path / "ours.npz";
  write_document(d, ours, numpy_format());
  const std::string bytes = slurp(ours);
  for (const char* key : {"params/Dense_0/kernel", "params/Dense_0/bias", "step"}) {
    auto reader = numpy_format().open_reader(ours, {});
    auto m = reader->map(key);
    ASSERT_TRUE(m) << key;
    const Tensor* want = d.find_tensor_path(key);
    ASSERT_EQ(m->nbytes(), want->nbytes());
    EXPECT_EQ(std::memcmp(m->bytes().data(), want->bytes().data(), want->nbytes()), 0) << key;
    const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(want->bytes().data()), want->nbytes()));
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_EQ(at % 64, 0u) << key;
  }
  // Big-endian (LayerNorm_0/scale) and Fortran-order (batch_stats/mean) arrays are converted:
  // map() gives the converted bytes.
  auto reader = numpy_format().open_reader(dir() / "flax.npz", {});
  for (const char* key : {"params/LayerNorm_0/scale", "batch_stats/mean", "params/Dense_0/kernel"}) {
    auto m = reader->map(key);
    const Tensor t = m ? *m : reader->read(key);
    EXPECT_EQ(std::memcmp(t.bytes().data(), d.find_tensor_path(key)->bytes().data(), t.nbytes()), 0) << key;
  }
}

TEST_F(NumpyFiles, HostileFilesAreRefusedWithTypedErrors) {
  const auto rows = tsv(dir() / "attacks" / "expected.tsv");
  ASSERT_GT(rows.size(), 20u);
  for (const auto& r : rows) {
    const fs::path file = dir() / "attacks" / r[0];
    std::string kind, what;
    try {
      Document d = read_numpy(file);
      kind = "accepted";
    } catch (const LimitError& e) {
      kind = "LimitError", what = e.what();
    } catch (const FormatError& e) {
      kind = "FormatError", what = e.what();
    } catch (const UnsupportedError& e) {
      kind = "UnsupportedError", what = e.what();
    } catch (const IntegrityError& e) {
      kind = "IntegrityError", what = e.what();
    } catch (const std::exception& e) {
      kind = "other", what = e.what();
    }
    EXPECT_EQ(kind, r[1]) << r[0] << ": " << what;
    EXPECT_NE(what.find(r[2]), std::string::npos) << r[0] << ": '" << what << "' does not say '" << r[2] << "'";
    // Every message names the file, once (the host names it; the plugin and the zip code don't).
    const size_t first = what.find(r[0]);
    EXPECT_NE(first, std::string::npos) << r[0] << ": " << what;
    EXPECT_EQ(what.find(r[0], first + 1), std::string::npos) << r[0] << ": the file is named twice: " << what;
  }
  EXPECT_FALSE(fs::exists("/tmp/ckpt-numpy-pwned"));
}

// The hostile files claim up to 2^80 bytes: reading them in a child limited to 512 MiB of
// address space shows no refusal allocates what the file claims.
TEST_F(NumpyFiles, HostileFilesAllocateNothingLarge) {
#ifdef CKPT_TEST_ASAN
  GTEST_SKIP() << "address space limits and AddressSanitizer's shadow memory do not mix";
#else
  for (const std::string f : {"big_claim.npy", "bomb.npz", "huge_shape.npy", "liar.npz"}) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      rlimit l{};
      l.rlim_cur = l.rlim_max = rlim_t{3} << 30;  // the loaded plugins' mappings take ~1 GiB of address space
      ::setrlimit(RLIMIT_AS, &l);
      int code = 3;
      try {
        Document d = read_numpy(dir() / "attacks" / f);
        code = 1;
      } catch (const Error&) {
        code = 0;
      } catch (const std::bad_alloc&) {
        code = 2;
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << f << ": status " << status;
  }
#endif
}

Document every_kind() {
  Document d;
  unsigned seed = 1;
  for (DType t : kNumpyDtypes) d.add_tensor(std::string("t_") + std::string(name(t)), pattern(t, {3, 4}, seed++));
  d.add_tensor("scalar", pattern(DType::f64, {}, seed++));
  d.add_tensor("empty", pattern(DType::f32, {0, 3}, seed++));
  Group& dense = d.group("params").group("Dense_0");
  dense.add_tensor("kernel", pattern(DType::f32, {5, 4}, seed++));
  dense.add_tensor("bias", pattern(DType::f32, {4}, seed++));
  d.group("params").group("LayerNorm_0").add_tensor("scale", pattern(DType::f16, {4}, seed++));
  d.group("unicode").add_tensor("Gewicht_\xc3\xa4", pattern(DType::i64, {2}, seed++));
  return d;
}

// The manifest numpy_side.py check reads: key, dtype, shape, raw bytes file.
void write_manifest(const Document& d, const fs::path& dir) {
  std::string rows;
  int i = 0;
  d.for_each_tensor([&](const std::string& path, const Tensor& t) {
    const std::string raw = "raw" + std::to_string(i++);
    spit(dir / raw, std::string_view(reinterpret_cast<const char*>(t.bytes().data()), t.nbytes()));
    rows += path + "\t" + std::string(name(t.dtype())) + "\t" + shape_text(t.shape()) + "\t" + raw + "\n";
  });
  spit(dir / "manifest.tsv", rows);
}

TEST(NumpyWrite, NpzLoadsInNumpyAsNpSaveWritesEachArray) {
  TempDir tmp;
  const Document d = every_kind();
  write_manifest(d, tmp.path);
  for (const char* compress : {"none", "deflate"}) {
    const fs::path p = tmp.path / (std::string("out_") + compress + ".npz");
    SaveOptions o;
    o.format_options = {{"compress", compress}};
    write_document(d, p, numpy_format(), o);
    std::string out;
    EXPECT_EQ(run(side("check " + p.string() + " " + (tmp.path / "manifest.tsv").string()), out), 0) << compress << ": " << out;
    EXPECT_EQ(differences(d, read_numpy(p)), "") << compress;
    EXPECT_EQ(differences(d, read_numpy(p, true)), "") << compress;
  }
  // Stored by default, deflated on request (as np.savez_compressed writes).
  EXPECT_GT(fs::file_size(tmp.path / "out_none.npz"), fs::file_size(tmp.path / "out_deflate.npz") / 2);
}

TEST(NumpyWrite, NpyIsByteForByteWhatNpSaveWrites) {
  TempDir tmp;
  unsigned seed = 40;
  for (DType t : kNumpyDtypes) {
    for (const Shape& s : {Shape{}, Shape{0}, Shape{7}, Shape{2, 3, 4}, Shape{1234567, 0}}) {
      Document d;
      d.add_tensor("array", pattern(t, s, seed++));
      write_manifest(d, tmp.path);
      const fs::path p = tmp.path / "one.npy";
      write_document(d, p);  // chosen by the extension
      std::string out;
      EXPECT_EQ(run(side("check " + p.string() + " " + (tmp.path / "manifest.tsv").string()), out), 0)
          << name(t) << " [" << shape_text(s) << "]: " << out;
      EXPECT_EQ(differences(d, read_document(p)), "");
    }
  }
}

TEST(NumpyWrite, NpyHoldsExactlyOneTensor) {
  TempDir tmp;
  Document two;
  two.add_tensor("a", pattern(DType::f32, {2}, 1));
  two.add_tensor("b", pattern(DType::f32, {2}, 2));
  Document grouped;
  grouped.group("g").add_tensor("a", pattern(DType::f32, {2}, 1));
  const Document none;
  for (const Document* d : std::initializer_list<const Document*>{&two, &grouped, &none}) {
    try {
      write_document(*d, tmp.path / "x.npy");
      ADD_FAILURE() << "a .npy of a document that is not one root tensor was written";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find(".npz"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(tmp.path / "x.npy"));
  // A tensor of another name is written; it reads back as "array".
  Document one;
  one.add_tensor("weights", pattern(DType::i32, {3}, 3));
  write_document(one, tmp.path / "x.npy");
  EXPECT_TRUE(read_document(tmp.path / "x.npy").find_tensor("array"));
}

TEST(NumpyWrite, EmptyGroupsAreDirectoryEntries) {
  TempDir tmp;
  Document d;
  d.group("optimizer").add_group("state");
  d.add_tensor("w", pattern(DType::f32, {2}, 1));
  const fs::path p = tmp.path / "e.npz";
  write_document(d, p, numpy_format());
  const Document back = read_numpy(p);
  ASSERT_TRUE(back.find_group_path("optimizer/state"));
  EXPECT_TRUE(back.find_group_path("optimizer/state")->children().empty());
  std::string out;
  EXPECT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import numpy as np; print(sorted(np.load('" + p.string() +
                    "', allow_pickle=False).files))\"",
                out),
            0);
  EXPECT_NE(out.find("'optimizer/state/'"), std::string::npos) << out;
}

TEST(NumpyWrite, WhatNumpyCannotHoldIsNamedAsALoss) {
  Document d;
  d.set("epoch", 3);
  d.add_tensor("w", pattern(DType::bf16, {2}, 1));
  d.add_tensor("f8", pattern(DType::f8_e4m3fn, {2}, 2));
  const auto losses = plan_losses(d, numpy_format().info());
  std::string all;
  for (const auto& l : losses) all += l.path + ": " + l.what + "\n";
  EXPECT_NE(all.find("epoch: attribute dropped"), std::string::npos) << all;
  EXPECT_NE(all.find("w: bf16 stored as f32 (exact)"), std::string::npos) << all;
  EXPECT_NE(all.find("f8: f8_e4m3fn stored as f16 (exact)"), std::string::npos) << all;
}

// .npz (made by numpy) -> safetensors / msgpack / pytorch -> .npz: the same arrays, groups and
// order, and numpy reads the last file as it read the first.
TEST_F(NumpyFiles, ConversionsRoundTrip) {
  TempDir tmp;
  for (const char* src : {"flax.npz", "flax_compressed.npz"}) {
    const Document original = read_numpy(dir() / src);
    for (const char* via : {"safetensors", "msgpack", "pt"}) {
      const fs::path mid = tmp.path / (std::string("mid.") + via);
      const fs::path back = tmp.path / (std::string("back_") + via + ".npz");
      write_document(original, mid);
      const Document m = read_document(mid);
      write_document(m, back, numpy_format());
      EXPECT_EQ(differences(original, read_numpy(back)), "") << src << " via " << via;
    }
  }
}

// Member names are numpy.load's keys: UTF-8 when flagged (bit 11), code page 437 otherwise, as
// Python's zipfile decodes them; written back, they are flagged UTF-8 and numpy reads the same
// keys.
TEST(NumpyNames, MemberNamesAreTheKeysNumpyLoadGives) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run(side("names " + tmp.path.string()), out), 0) << out;
  for (const char* f : {"cp437.npz", "ff.npz", "flagged.npz"}) {
    std::vector<std::string> want;
    std::istringstream keys(slurp(tmp.path / (std::string(f) + ".keys")));
    for (std::string k; std::getline(keys, k);) want.push_back(k);
    std::vector<std::string> got;
    const Document d = read_numpy(tmp.path / f);
    d.for_each_tensor([&](const std::string& path, const Tensor&) { got.push_back(path); });
    EXPECT_EQ(got, want) << f;
    // ckpt's copy: numpy.load gives the same keys.
    const fs::path copy = tmp.path / (std::string("copy_") + f);
    write_document(d, copy, numpy_format());
    std::string listed;
    ASSERT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import numpy as np, sys; z = np.load(sys.argv[1], allow_pickle=False); "
                                             "open(sys.argv[2], 'w', encoding='utf-8').write(''.join(k + chr(10) for k in z.files))\" " +
                      copy.string() + " " + (tmp.path / "copy.keys").string(),
                  listed),
              0)
        << f << ": " << listed;
    EXPECT_EQ(slurp(tmp.path / "copy.keys"), slurp(tmp.path / (std::string(f) + ".keys"))) << f;
  }
  // cp437.npz's name is the UTF-8 bytes of 'é' without the flag: numpy's key is '├⌐'.
  EXPECT_TRUE(read_numpy(tmp.path / "cp437.npz").find_tensor("\xe2\x94\x9c\xe2\x8c\x90"));
}

// A name flagged UTF-8 must be UTF-8: np.load cannot open an archive holding one that is not,
// so the writer refuses it, naming it (the document may come from a format of raw byte names).
TEST(NumpyNames, NamesThatAreNotUtf8AreNotWritten) {
  TempDir tmp;
  for (const std::string& bad : {std::string("w\xff"), std::string("\xc3\x28"), std::string("\xed\xa0\x80"),
                                std::string("\xc0\xaf")}) {
    Document d;
    d.add_tensor("ok", pattern(DType::f32, {2}, 1));
    d.group("g").add_tensor(bad, pattern(DType::f32, {2}, 2));
    try {
      write_document(d, tmp.path / "bad.npz", numpy_format());
      ADD_FAILURE() << "a name that is not UTF-8 was written";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("'g/"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(tmp.path / "bad.npz"));
  }
}

// numpy.load looks a key up as a member name first: with members 'x.npy' and 'x.npy.npy',
// z['x.npy'] is the array 'x'. Such an archive has two readings: refused both ways.
TEST(NumpyNames, AKeyThatIsAnotherMembersNameIsRefused) {
  TempDir tmp;
  for (const bool reversed : {false, true}) {
    for (const char* group : {"", "g"}) {
      Document d;
      Group& g = group[0] ? d.group(group) : d;
      g.add_tensor(reversed ? "x.npy" : "x", pattern(DType::f32, {2}, 1));
      g.add_tensor(reversed ? "x" : "x.npy", pattern(DType::f32, {2}, 2));
      const std::string p = group[0] ? std::string(group) + "/" : "";
      try {
        write_document(d, tmp.path / "dup.npz", numpy_format());
        ADD_FAILURE() << "tensors 'x' and 'x.npy' were written";
      } catch (const UnsupportedError& e) {
        EXPECT_NE(std::string(e.what()).find("tensors '" + p + "x' and '" + p + "x.npy'"), std::string::npos) << e.what();
      }
      EXPECT_FALSE(fs::exists(tmp.path / "dup.npz"));
    }
  }
  // 'x.npy' alone, or beside 'y', is a key like any other.
  Document d;
  d.add_tensor("x.npy", pattern(DType::f32, {2}, 1));
  d.add_tensor("y", pattern(DType::f32, {2}, 2));
  write_document(d, tmp.path / "ok.npz", numpy_format());
  EXPECT_EQ(differences(d, read_numpy(tmp.path / "ok.npz")), "");
}

// What np.load makes of a file is what ckpt reads or the reason it refuses it: an npz of the
// empty key (np.load gives z['']) is refused for its name, never as "raw bytes"; a descr that
// is a dtype name ('float32', which np.load gives to numpy.dtype) reads as NumPy reads it.
TEST(NumpyNames, WhatNpLoadMakesOfNamesIsReadOrRefusedTruthfully) {
  TempDir tmp;
  const fs::path dir = tmp.path;
  std::string out;
  std::ofstream(dir / "make.py") << R"PY(import numpy as np, sys
d = sys.argv[1]
np.savez(d + '/empty_key.npz', **{'': np.arange(3, dtype=np.float32)})
print('empty key:', np.load(d + '/empty_key.npz')[''].tolist())
def npy(name, descr, data):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (descr, data.size)
    h += ' ' * (63 - (10 + len(h)) % 64) + '\n'
    open(d + '/' + name, 'wb').write(b'\x93NUMPY\x01\x00' + len(h).to_bytes(2, 'little') + h.encode() + data.tobytes())
    print(name, np.load(d + '/' + name).dtype.str)
npy('f32.npy', 'float32', np.arange(3, dtype='<f4'))
npy('i2.npy', 'h', np.arange(4, dtype='<i2'))
npy('c16.npy', 'complex', np.arange(2, dtype='<c16'))
npy('long.npy', 'int', np.arange(2, dtype='<i8'))
npy('f128.npy', 'float128', np.arange(2, dtype=np.longdouble))
)PY";
  ASSERT_EQ(run(std::string(CKPT_PYTHON) + " " + (dir / "make.py").string() + " " + dir.string(), out), 0) << out;
  // NumPy's own reading, for the record.
  EXPECT_NE(out.find("empty key: [0.0, 1.0, 2.0]"), std::string::npos) << out;
  EXPECT_NE(out.find("f32.npy <f4"), std::string::npos) << out;
  try {
    read_numpy(dir / "empty_key.npz");
    ADD_FAILURE() << "the empty key read";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("the empty key"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("raw bytes"), std::string::npos) << e.what();
  }
  for (const auto& [file, dtype, n] : {std::tuple{"f32.npy", DType::f32, 3}, std::tuple{"i2.npy", DType::i16, 4},
                                       std::tuple{"c16.npy", DType::c128, 2}}) {
    SCOPED_TRACE(file);
    const Document d = read_numpy(dir / file);
    const Tensor* t = d.find_tensor("array");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->dtype(), dtype);
    EXPECT_EQ(t->shape(), Shape{n});
  }
  EXPECT_EQ(read_numpy(dir / "f32.npy").find_tensor("array")->data<float>()[2], 2.0f);
  // A name of the platform's width, and one of a dtype ckpt does not hold: refused as names.
  for (const auto& [file, why] : {std::pair{"long.npy", "whose width is the reading platform's"},
                                  std::pair{"f128.npy", "not a type string ('<f4') but a name"}}) {
    try {
      read_numpy(dir / file);
      ADD_FAILURE() << file << " read";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
}

// Every member's CRC-32 is checked before its bytes are used: a stored member's when its data
// is first read or mapped (never at open, which reads headers only), a stored member of no
// data at open, a deflated member's as it is inflated.
TEST(NumpyIntegrity, DamagedMembersFailTheirCrc) {
  TempDir tmp;
  std::string out;
  const fs::path p = tmp.path / "c.npz";
  ASSERT_EQ(run(side("crc " + p.string()), out), 0) << out;
  EXPECT_EQ(read_numpy(p).tensor_count(), 2u);
  const fs::path bad = tmp.path / "c.npz.bad";
  for (const bool map : {false, true}) {
    auto reader = numpy_format().open_reader(bad, {});  // listing reads no data
    try {
      if (map) {
        auto m = reader->map("w");
        ADD_FAILURE() << "a damaged member was mapped" << (m ? "" : " (declined)");
      } else {
        Tensor t = reader->read("w");
        ADD_FAILURE() << "a damaged member was read";
      }
    } catch (const IntegrityError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("'w.npy' fails its CRC-32 check"), std::string::npos) << what;
      EXPECT_NE(what.find("c.npz.bad"), std::string::npos) << what;
    }
    EXPECT_THROW(read_numpy(bad, map), IntegrityError);
  }
  EXPECT_THROW(numpy_format().open_reader(tmp.path / "c.npz.empty", {}), IntegrityError);
  // ckpt verify reads every tensor, so it finds the damage (numpy.load raises BadZipFile).
  auto reader = open(bad);
  EXPECT_THROW(verify(*reader), IntegrityError);
}

// A member's folders are indexed by (parent, name): a name costs its own bytes once, not the
// full path of every folder above it again. Names 64 levels deep of long folder names read in
// little memory; the document they make is charged against max_document_bytes.
TEST(NumpyLimits, DeepNamesCostTheirOwnBytes) {
  TempDir tmp;
  std::string out;
  const fs::path p = tmp.path / "deep.npz";
  ASSERT_EQ(run(side("deep " + p.string() + " 400"), out), 0) << out;
#ifdef CKPT_TEST_ASAN
  EXPECT_EQ(read_numpy(p).tensor_count(), 0u);
#else
  // In a child, so that its peak resident size is this read's.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rusage before{}, after{};
    const Format f = numpy_format();  // the plugins loaded before measuring
    ::getrusage(RUSAGE_SELF, &before);
    int code = 0;
    try {
      auto reader = f.open_reader(p, {});
      code = reader->tree().tensor_count() == 0 ? 0 : 1;
    } catch (...) {
      code = 2;
    }
    ::getrusage(RUSAGE_SELF, &after);
    // ~25 MiB now (the mapping, 25600 groups in the reader and the host's tree); an index of
    // full paths held each member's 63 folder prefixes besides (61 to 3900 bytes each, ~125 KB
    // a member, ~50 MB for the 400).
    if (code == 0 && after.ru_maxrss - before.ru_maxrss > 48 * 1024) code = 3;  // KiB
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
#endif
  try {
    numpy_format().open_reader(p, Options{{"max_document_bytes", "1000000"}});
    ADD_FAILURE() << "25600 groups fit in a document of 1000000 bytes";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("max_document_bytes"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

// The files kept in golden/ (numpy_side.py golden; the fuzz target's seeds) read through the
// host's own path, format chosen by content and extension.
TEST(NumpyGolden, CommittedFilesRead) {
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(kHere / "golden")) {
    Document d;
    ASSERT_NO_THROW(d = read_document(e.path())) << e.path();
    EXPECT_GT(d.tensor_count(), 0u) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 7u);
}

}  // namespace

// A member's key may have at most 64 '/'-separated levels: a tensor in a group 63 deep, or an
// empty group 64 deep (a directory member). The writer refuses the group whose members would lie
// deeper, so no .npz ckpt writes is one its reader refuses.
TEST(NumpyLimits, WriterRefusesGroupsWhoseMembersLieDeeperThanTheReaderReads) {
  TempDir tmp;
  auto chain = [](int depth, bool with_tensor) {
    Document doc;
    Group* g = &doc;
    for (int i = 0; i < depth; ++i) g = &g->add_group("g");
    if (with_tensor) g->add_tensor("t", pattern(DType::u8, {1}, 1));
    return doc;
  };
  const fs::path p = tmp.path / "deep.npz";
  for (auto [depth, with_tensor] : {std::pair{64, true}, std::pair{65, false}}) {
    try {
      write_document(chain(depth, with_tensor), p, numpy_format());
      FAIL() << "members 65 levels deep were written";
    } catch (const LimitError& e) {
      EXPECT_NE(std::string(e.what()).find("at most 64"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("group 'g/g/g"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(tmp.path)) << "the refused save left a file";
  }
  for (auto [depth, with_tensor] : {std::pair{63, true}, std::pair{64, false}}) {
    const Document ok = chain(depth, with_tensor);
    write_document(ok, p, numpy_format());
    const Document back = read_numpy(p);
    std::string path = "g";
    for (int i = 1; i < depth; ++i) path += "/g";
    ASSERT_TRUE(back.find_group_path(path)) << depth;
    EXPECT_EQ(back.find_group_path(path)->children().size(), with_tensor ? 1u : 0u);
  }
}
