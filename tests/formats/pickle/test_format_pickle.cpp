// The pickle format: NumPy data pickled by Debian's Python and joblib reads with its exact
// bytes, objects of unknown classes read as records of their attributes, and pickles that
// would run code are refused by name while a marker file proves nothing ran.
#include "scratch.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

using ckpt_test::TempDir;

int run(const std::string& command, std::string& out) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string bytes_of(const Tensor& t) { return {reinterpret_cast<const char*>(t.bytes().data()), t.nbytes()}; }

class PickleFormat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string out;
    ASSERT_EQ(run(std::string(CKPT_PYTHON) + " " + CKPT_PICKLE_TEST_DIR + "/make_pickles.py " + dir_->path.string() +
                      " " + marker().string(),
                  out),
              0)
        << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path file(const std::string& n) { return dir_->path / n; }
  static fs::path marker() { return dir_->path / "code-ran"; }
  // Every tensor of `doc` whose expected bytes exist matches them; returns how many did.
  static int expect_bytes(const Document& doc, const std::string& name) {
    int n = 0;
    doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
      std::string flat = path;
      const fs::path e = file("expect/" + name + "." + flat);
      if (!fs::exists(e)) return;
      EXPECT_EQ(bytes_of(t), slurp(e)) << name << ": " << path;
      ++n;
    });
    return n;
  }
  static TempDir* dir_;
};
TempDir* PickleFormat::dir_ = nullptr;

}  // namespace

TEST_F(PickleFormat, PlainArraysOfEveryProtocol) {
  for (int p : {2, 4, 5}) {
    const std::string n = "plain_p" + std::to_string(p) + ".pkl";
    const Document doc = read_document(file(n));
    EXPECT_EQ(doc.find_tensor("array")->shape(), (Shape{3, 4})) << n;
    EXPECT_EQ(expect_bytes(doc, n), 1) << n;
  }
}

TEST_F(PickleFormat, DictsOfArraysAndValues) {
  for (int p : {2, 4, 5}) {
    const std::string n = "dict_p" + std::to_string(p) + ".pkl";
    const Document doc = read_document(file(n));
    EXPECT_EQ(expect_bytes(doc, n), 6) << n;  // f64, i64, bool, f16, Fortran order, big-endian
    EXPECT_EQ(doc.find_tensor("fortran")->shape(), (Shape{2, 3}));
    EXPECT_EQ(doc.find_tensor("half")->dtype(), DType::f16);
    EXPECT_EQ(std::get<double>(*doc.attribute("lr")), 0.5);
    EXPECT_EQ(std::get<int64_t>(*doc.attribute("epoch")), 7);
    EXPECT_EQ(std::get<bool>(*doc.attribute("flag")), true);
    EXPECT_EQ(std::get<std::string>(*doc.attribute("name")), "run");
    EXPECT_EQ(std::get<std::vector<int64_t>>(*doc.attribute("sizes")), (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(std::get<double>(*doc.attribute("np_loss")), 0.125);
  }
}

TEST_F(PickleFormat, ListsOfArrays) {
  for (int p : {2, 5}) {
    const std::string n = "list_p" + std::to_string(p) + ".pkl";
    const Document doc = read_document(file(n));
    ASSERT_EQ(doc.children().size(), 4u) << n;
    EXPECT_EQ(expect_bytes(doc, n), 4) << n;  // members 0..3: f32, i64, bool, a transposed u8
    EXPECT_EQ(doc.find_tensor("3")->shape(), (Shape{2, 3})) << n;
  }
}

TEST_F(PickleFormat, ArraysConvertWithTheirExactBytesToEveryFormat) {
  // ckpt convert, the program: the pickle's arrays become model/state of the converted file.
  struct Source {
    std::string file;
    size_t arrays;
  };
  const Source sources[] = {{"plain_p2.pkl", 1}, {"plain_p5.pkl", 1}, {"dict_p2.pkl", 6},
                            {"dict_p5.pkl", 6},  {"list_p2.pkl", 4},  {"list_p5.pkl", 4}};
  TempDir tmp;
  int formats = 0;
  for (const auto& f : Registry::global().formats()) {
    if (!f.info().can(CKPT_CAP_WRITE)) continue;
    ++formats;
    for (const Source& src : sources) {
      SCOPED_TRACE(src.file + " -> " + f.name());
      // The dict's numbers and strings need attributes (and its groups nesting); its bool mask a
      // bool dtype.
      const bool lossy = !f.info().can(CKPT_CAP_ATTRIBUTES) || !f.info().can(CKPT_CAP_NESTED_GROUPS) ||
                         !f.info().holds(DType::boolean);
      const fs::path dst = tmp.path / (src.file + "." + f.name());
      std::string out;
      ASSERT_EQ(run(std::string(CKPT_CLI) + " convert --to " + f.name() + (lossy ? " --allow-lossy " : " ") +
                        file(src.file).string() + " " + dst.string(),
                    out),
                0)
          << out;
      const Checkpoint c = load(dst);
      EXPECT_EQ(c.model_state.children().size(), src.arrays);
      size_t checked = 0;
      for (const auto& e : fs::directory_iterator(file("expect"))) {
        const std::string n = e.path().filename().string();
        if (n.rfind(src.file + ".", 0) != 0) continue;
        const std::string name = n.substr(src.file.size() + 1);
        const Tensor* t = c.model_state.find_tensor(name);
        ASSERT_TRUE(t) << "model/state/" << name;
        // A format without u8 or bool (GGUF) widens them, a named loss: no longer these bytes.
        if (f.info().holds(DType::u8) && f.info().holds(DType::boolean)) {
          EXPECT_EQ(bytes_of(*t), slurp(e.path())) << name;
        }
        ++checked;
      }
      EXPECT_EQ(checked, src.arrays);
      if (src.file.rfind("plain", 0) == 0) {
        EXPECT_EQ(c.model_state.find_tensor("array")->shape(), (Shape{3, 4}));
      }
      if (src.file.rfind("dict", 0) == 0) {
        EXPECT_EQ(c.model_state.find_tensor("half")->dtype(), DType::f16);
        EXPECT_EQ(c.model_state.find_tensor("fortran")->shape(), (Shape{2, 3}));
      }
      if (src.file.rfind("list", 0) == 0) {
        EXPECT_EQ(c.model_state.find_tensor("3")->shape(), (Shape{2, 3}));
      }
    }
  }
  EXPECT_GE(formats, 3) << "the writable formats' plugins are not in the build";
}

TEST_F(PickleFormat, JoblibArrays) {
  const Document doc = read_document(file("arrays.joblib"));
  EXPECT_EQ(expect_bytes(doc, "arrays.joblib"), 2);
}

// joblib.dump(..., compress=...) with every compressor joblib has without extra packages: each
// reads as the uncompressed file does, with the arrays' exact bytes.
TEST_F(PickleFormat, CompressedJoblibFilesReadAsTheUncompressedOne) {
  const Document plain = read_document(file("fitted.joblib"));
  EXPECT_EQ(expect_bytes(plain, "fitted.joblib"), 3);
  int compressed = 0;
  for (const char* c : {"zlib", "gzip", "bz2", "lzma", "xz", "default"}) {
    SCOPED_TRACE(c);
    const fs::path p = file(std::string("fitted_") + c + ".joblib");
    EXPECT_EQ(Registry::global().for_reading(p, "auto").name(), "pickle");
    const Document doc = read_document(p);
    DiffOptions exact;
    exact.ignore_meta = false;
    const DiffReport r = diff_documents(plain, doc, exact);
    for (const auto& e : r.entries) ADD_FAILURE() << e.path << ": " << e.detail;
    EXPECT_EQ(std::get<std::string>(*doc.attribute("solver")), "lbfgs");
    EXPECT_EQ(std::get<std::string>(*doc.find_group("model")->attribute("__class__")), "__main__.SimpleModel");
    ++compressed;
  }
  EXPECT_EQ(compressed, 6);
}

// A damaged or hostile compressed file: a typed error naming the file, within the bound.
TEST_F(PickleFormat, CompressedJoblibDamageAndBombsAreTypedErrors) {
  try {
    read_document(file("cut_zlib.joblib"));
    ADD_FAILURE() << "a cut stream was read";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("zlib stream ends early"), std::string::npos) << e.what();
  }
  try {
    read_document(file("trailing_zlib.joblib"));
    ADD_FAILURE() << "bytes after the stream were read";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("4 bytes after the end of its zlib stream"), std::string::npos) << e.what();
  }
  // 1 GiB in about a megabyte: more than 16 times the file plus 32 MiB.
  try {
    read_document(file("bomb_zlib.joblib"));
    ADD_FAILURE() << "a decompression bomb was read";
  } catch (const LimitError& e) {
    EXPECT_NE(std::string(e.what()).find("decompresses to more than 50252992 bytes"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_decompressed"), std::string::npos) << e.what();
  }
  // 18 bytes of LZMA header asking for a 1 GiB dictionary: the decoder's memory is bounded by
  // half the output's bound, before liblzma allocates anything.
  {
    TempDir tmp;
    const fs::path p = tmp.path / "dictionary.joblib";
    std::ofstream(p, std::ios::binary) << std::string("\x5d\x00\x00\x00\x40", 5) << std::string(8, '\xff') << std::string(5, '\0');
    try {
      read_document(p);
      ADD_FAILURE() << "a 1 GiB dictionary was granted";
    } catch (const LimitError& e) {
      EXPECT_NE(std::string(e.what()).find("bytes of decoder memory"), std::string::npos) << e.what();
    }
  }
  // The option sets the bound: lowered below what a real file needs, it refuses that file too.
  LoadOptions tight;
  tight.format_options = {{"max_decompressed", "100"}};
  EXPECT_THROW(read_document(file("fitted_xz.joblib"), tight), LimitError);
  try {
    read_document(file("evil_gzip.joblib"));
    ADD_FAILURE() << "a compressed pickle's code was not refused";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("refused: os.system"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("the gzip-compressed pickle"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(marker())) << "a pickle's code ran";
}

TEST_F(PickleFormat, UnknownClassIsReadAsARecordAndConvertsWithoutItsClass) {
  const Document doc = read_document(file("my_simple_model.pkl"));
  EXPECT_EQ(std::get<std::string>(*doc.attribute("__class__")), "__main__.SimpleModel");
  EXPECT_EQ(std::get<std::string>(*doc.attribute("name")), "simple");
  EXPECT_EQ(expect_bytes(doc, "my_simple_model.pkl"), 2);

  // ckpt convert my_simple_model.pkl out.<fmt>, to every format ckpt writes: weight and bias
  // become the model's state.
  TempDir tmp;
  int formats = 0;
  for (const auto& f : Registry::global().formats()) {
    if (!f.info().can(CKPT_CAP_WRITE)) continue;
    SCOPED_TRACE(f.name());
    ++formats;
    const bool lossy = !f.info().can(CKPT_CAP_ATTRIBUTES);  // the record's __class__ and name
    const fs::path dst = tmp.path / ("out." + f.name());
    std::string out;
    ASSERT_EQ(run(std::string(CKPT_CLI) + " convert --to " + f.name() + (lossy ? " --allow-lossy " : " ") +
                      file("my_simple_model.pkl").string() + " " + dst.string(),
                  out),
              0)
        << out;
    const Checkpoint c = load(dst);
    ASSERT_TRUE(c.model_state.find_tensor("weight"));
    ASSERT_TRUE(c.model_state.find_tensor("bias"));
    EXPECT_EQ(bytes_of(*c.model_state.find_tensor("weight")), slurp(file("expect/my_simple_model.pkl.weight")));
    EXPECT_EQ(bytes_of(*c.model_state.find_tensor("bias")), slurp(file("expect/my_simple_model.pkl.bias")));
  }
  EXPECT_GE(formats, 3) << "the writable formats' plugins are not in the build";
}

TEST_F(PickleFormat, PicklesThatWouldRunCodeAreRefusedByName) {
  const std::pair<const char*, const char*> cases[] = {
      {"evil_system.pkl", "refused: os.system"},
      {"evil_subprocess.pkl", "refused: subprocess.check_call"},
      {"evil_nested.pkl", "refused: os.system"},
  };
  for (const auto& [name, want] : cases) {
    try {
      read_document(file(name));
      ADD_FAILURE() << name << " was read";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << "names the file: " << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(marker())) << "a pickle's code ran";
}

TEST_F(PickleFormat, TruncatedPicklesAreFormatErrors) {
  const std::string good = slurp(file("dict_p4.pkl"));
  TempDir tmp;
  for (size_t keep : {size_t{0}, size_t{2}, good.size() / 3, good.size() - 1}) {
    const fs::path p = tmp.path / "cut.pkl";
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(good.data(), static_cast<std::streamsize>(keep));
    LoadOptions o;
    o.format = "pickle";
    EXPECT_THROW(read_document(p, o), FormatError) << keep;
  }
}

namespace {

// Writes `bytes` as a pickle file and reads it; returns the error's message.
template <class E>
std::string refusal(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  try {
    LoadOptions o;
    o.format = "pickle";
    read_document(p, o);
  } catch (const E& e) {
    return e.what();
  }
  return "(read without an error)";
}

}  // namespace

TEST_F(PickleFormat, HostilePicklesHitBoundsNotTheStackOrMemory) {
  TempDir tmp;
  // A dict key of 200000 nested 1-tuples: 200 KB that would recurse 200000 deep. The bound on
  // objects (one per two bytes) stops it before it is a key; 1000 levels reach the key's.
  std::string deep = "\x80\x02}K\x01" + std::string(200000, '\x85') + "K\x02s.";
  std::string msg = refusal<LimitError>(tmp.path / "deep.pkl", deep);
  EXPECT_NE(msg.find("builds more than"), std::string::npos) << msg;
  deep = "\x80\x02}K\x01" + std::string(1000, '\x85') + "K\x02s.";
  msg = refusal<LimitError>(tmp.path / "deep.pkl", deep);
  EXPECT_NE(msg.find("nested deeper than 512"), std::string::npos) << msg;
  // Five million empty tuples, each popped: 10 MB that would otherwise make 5 million objects.
  std::string flood = "\x80\x02";
  for (int i = 0; i < 5'000'000; ++i) flood += ")0";
  flood += "N.";
  msg = refusal<LimitError>(tmp.path / "flood.pkl", flood);
  EXPECT_NE(msg.find("the pickle builds more than 4194304 objects"), std::string::npos) << msg;
  EXPECT_NE(msg.find("flood.pkl"), std::string::npos) << msg;
  // A length that claims more than the file holds allocates nothing.
  msg = refusal<FormatError>(tmp.path / "long.pkl", std::string("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f", 11));
  EXPECT_NE(msg.find("truncated: BINUNICODE8 needs 9223372036854775807 bytes, 0 remain"), std::string::npos) << msg;
}

// scikit-learn's estimators (make_sklearn.py) as users pickle them, at protocols 2, 4 and 5 and
// joblib-compressed: an MLPClassifier holds a RandomState, which numpy pickles as a call to
// its constructor, and a RandomForest's trees are calls to sklearn's Tree with structured
// arrays of nodes. The calls are kept, not made; the arrays read bit for bit, those of dtypes
// ckpt has no type for (records, fixed-size strings) as their bytes beside their NumPy dtype
// and shape.
TEST_F(PickleFormat, ScikitLearnEstimatorsReadWithEveryArrayAndTheirCallsNotRun) {
  const fs::path dir = file("sklearn");
  fs::create_directories(dir);
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_PYTHON) + " " + CKPT_PICKLE_TEST_DIR + "/make_sklearn.py " + dir.string() + " " +
                    marker().string(),
                out),
            0)
      << out;
  auto expected = [&](const std::string& n) { return slurp(dir / (n + ".bin")); };
  for (const char* f : {"mlp_p2.pkl", "mlp_p4.pkl", "mlp_p5.pkl", "mlp.joblib"}) {
    SCOPED_TRACE(f);
    const Document doc = read_document(dir / f);
    for (int i = 0; i < 2; ++i) {
      const Tensor* w = doc.find_tensor_path("coefs_/" + std::to_string(i));
      const Tensor* b = doc.find_tensor_path("intercepts_/" + std::to_string(i));
      ASSERT_TRUE(w && b);
      EXPECT_EQ(bytes_of(*w), expected("mlp.coefs_." + std::to_string(i)));
      EXPECT_EQ(bytes_of(*b), expected("mlp.intercepts_." + std::to_string(i)));
    }
    const Group* rs = doc.find_group("_random_state");
    ASSERT_TRUE(rs);
    EXPECT_EQ(std::get<std::string>(*rs->attribute("__call__")), "numpy.random._pickle.__randomstate_ctor (not run)");
    // The Mersenne Twister's key is uint32, a dtype of its own.
    const Tensor* key = rs->find_tensor_path("state/key");
    ASSERT_TRUE(key);
    EXPECT_EQ(key->dtype(), DType::u32);
    EXPECT_EQ(key->shape(), Shape{624});
    EXPECT_EQ(bytes_of(*key), expected("mlp.random_state_key"));
  }
  std::istringstream names(slurp(dir / "forest.tree0.fields.txt"));
  const std::vector<std::string> fields{std::istream_iterator<std::string>(names), std::istream_iterator<std::string>()};
  ASSERT_GE(fields.size(), 7u);
  for (const char* f : {"forest_p2.pkl", "forest_p4.pkl", "forest_p5.pkl", "forest.joblib"}) {
    SCOPED_TRACE(f);
    const Document doc = read_document(dir / f);
    const Group* tree = doc.find_group_path("estimators_/0/tree_");
    ASSERT_TRUE(tree);
    EXPECT_EQ(std::get<std::string>(*tree->attribute("__call__")), "sklearn.tree._tree.Tree (not run)");
    const Group* nodes = tree->find_group("nodes");
    ASSERT_TRUE(nodes);
    EXPECT_EQ(std::get<std::vector<std::string>>(*nodes->attribute("__fields__")), fields);
    EXPECT_EQ(bytes_of(*nodes->find_tensor("data")), expected("forest.tree0.nodes"));
    EXPECT_EQ(bytes_of(*tree->find_tensor("values")), expected("forest.tree0.values"));
    // Through another format and back, the same document.
    const fs::path mp = dir / (std::string(f) + ".msgpack");
    ConvertOptions o;
    o.fsync = false;
    o.allow_lossy = true;  // the estimators' None attributes (max_depth=None, ...), each named
    const ConvertReport rep = convert(dir / f, mp, o);
    EXPECT_FALSE(rep.losses.empty());
    for (const auto& l : rep.losses) EXPECT_NE(l.what.find("None"), std::string::npos) << l.path << ": " << l.what;
    DiffOptions exact;
    exact.ignore_meta = false;
    // Less meta: the Nones the reading names there, the hashes and losses convert records.
    Document back = read_document(mp);
    ASSERT_TRUE(back.find_group("meta")) << f;
    back.erase("meta");
    Document read = doc;
    read.erase("meta");
    const DiffReport d = diff_documents(read, back, exact);
    EXPECT_TRUE(d.identical()) << d.entries.front().path << ": " << d.entries.front().detail;
  }
  // A document has no null: an estimator's None attributes are named (meta/@unread), so a
  // conversion names each as a loss instead of dropping it silently.
  ASSERT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import pickle, numpy as np\n"
                "from sklearn.linear_model import LogisticRegression\nfrom sklearn.pipeline import Pipeline\n"
                "X = np.random.default_rng(0).random((20, 3)); y = (X[:, 0] > .5).astype(int)\n"
                "m = LogisticRegression().fit(X, y); pickle.dump(m, open('" + (dir / "lr.pkl").string() + "', 'wb'))\n"
                "pickle.dump(Pipeline([('lr', m)]), open('" + (dir / "pipe.pkl").string() + "', 'wb'))\n"
                "print(sorted(k for k, v in vars(m).items() if v is None))\"",
                out),
            0)
      << out;
  for (const char* none : {"class_weight", "random_state", "n_jobs", "l1_ratio"})
    EXPECT_NE(out.find(std::string("'") + none + "'"), std::string::npos) << out;  // what sklearn holds as None
  const Document lr = read_document(dir / "lr.pkl");
  const Value* unread = lr.find_group("meta") ? lr.find_group("meta")->attribute("unread") : nullptr;
  ASSERT_TRUE(unread);
  for (const char* none : {"class_weight", "random_state", "n_jobs", "l1_ratio"}) {
    const auto& list = std::get<std::vector<std::string>>(*unread);
    EXPECT_NE(std::find(list.begin(), list.end(), std::string(none) + ": None, left out: a document has no null"), list.end())
        << none;
  }
  ConvertOptions strict;
  strict.fsync = false;
  try {
    convert(dir / "lr.pkl", dir / "lr.msgpack", strict);
    ADD_FAILURE() << "None attributes dropped without --allow-lossy";
  } catch (const UnsupportedError& e) {
    for (const char* none : {"class_weight", "random_state", "n_jobs", "l1_ratio"})
      EXPECT_NE(std::string(e.what()).find(std::string(none) + ": None"), std::string::npos) << e.what();
  }
  strict.allow_lossy = true;
  const ConvertReport piped = convert(dir / "pipe.pkl", dir / "pipe.msgpack", strict);
  bool memory = false, nested = false;
  for (const auto& l : piped.losses) {
    memory = memory || l.path == "memory";
    nested = nested || l.path == "steps/0/1/class_weight";
  }
  EXPECT_TRUE(memory && nested);
  const Document written = read_document(dir / "pipe.msgpack");  // kept: `losses` points into it
  const Value* losses = written.find_group_path("meta/conversion")->attribute("losses");
  ASSERT_TRUE(losses);
  EXPECT_EQ(std::get<std::vector<std::string>>(*losses).size(), piped.losses.size());
  // Only calls that rebuild data are kept as calls not made; any other call is refused by name,
  // whatever module it names (a deny-list of modules that run code is easy to get around:
  // linecache.os.system, _functools.partial, deque(starmap(system, ...))).
  for (const char* name : {"builtins_eval", "builtins_getattr", "importlib", "pickle_loads", "shutil_rmtree", "posix_system",
                           "numpy_load", "functools_partial", "marshal_loads", "webbrowser", "unknown", "dotted_name",
                           "private_twin", "nested_starmap", "sklearn_lowercase"}) {
    SCOPED_TRACE(name);
    try {
      read_document(dir / ("call_" + std::string(name) + ".pkl"));
      ADD_FAILURE() << "read";
    } catch (const UnsupportedError& e) {
      EXPECT_NE(std::string(e.what()).find("refused: "), std::string::npos) << e.what();
    }
  }
  // User data never poses as a raw array or a call record: its keys spelled like theirs are
  // written with %5F.
  const Document spoof = read_document(dir / "spoof.pkl");
  EXPECT_FALSE(spoof.find_group("fake")->attribute("__numpy_dtype__"));
  EXPECT_TRUE(spoof.find_group("fake")->attribute("%5F_numpy_dtype__"));
  EXPECT_TRUE(spoof.find_group("real")->attribute("__numpy_dtype__"));
  EXPECT_FALSE(spoof.find_group("call")->attribute("__call__"));
  EXPECT_TRUE(spoof.find_group("call")->attribute("%5F_call__"));
  EXPECT_FALSE(fs::exists(marker())) << "a pickle's code ran";
}
