// The numpy plugin against NumPy itself (Debian's python3-numpy): files numpy writes read bit
// for bit (every dtype, both byte orders, C and Fortran order, 0-d and empty arrays, header
// versions 1.0, 2.0 and 3.0, np.savez and np.savez_compressed with Flax's '/' keys); files ckpt
// writes load in numpy.load(allow_pickle=False) equal and byte for byte as np.save writes each
// array; conversions through safetensors, msgpack and pytorch come back equal; hostile files
// are refused with typed errors. Generic round trips are the conformance kit's job.
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
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

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("ckpt-numpy-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

int run(const std::string& command, std::string& out) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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
    } catch (const std::exception& e) {
      kind = "other", what = e.what();
    }
    EXPECT_EQ(kind, r[1]) << r[0] << ": " << what;
    EXPECT_NE(what.find(r[2]), std::string::npos) << r[0] << ": '" << what << "' does not say '" << r[2] << "'";
    // Every message names the file.
    EXPECT_NE(what.find(r[0]), std::string::npos) << r[0] << ": " << what;
  }
  EXPECT_FALSE(fs::exists("/tmp/ckpt-numpy-pwned"));
}

// The hostile files claim up to 2^80 bytes: reading them in a child limited to 512 MiB of
// address space shows no refusal allocates what the file claims.
TEST_F(NumpyFiles, HostileFilesAllocateNothingLarge) {
#if defined(__SANITIZE_ADDRESS__)
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
