// The hdf5 plugin, checked against itself and against h5py (Debian's python3-h5py): files we
// write open in h5py with every tensor and attribute equal bit for bit; files h5py writes
// (plain, compressed, chunked, Keras' legacy layouts) read as the documents they hold; damaged
// files give typed errors.
#include "byte_flips.hpp"
#include "hdf5_test_support.hpp"
#include "sanitizers.hpp"

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

using namespace hdf5_test;

// libhdf5 1.10 leaks a metadata cache entry (a few hundred bytes) each time an object header
// fails its checksum, which the damaged-file tests do a thousand times; valgrind shows the
// allocation inside libhdf5's cache, not in ckpt. LeakSanitizer reads this hook when it exists.
extern "C" const char* __lsan_default_suppressions() { return "leak:libhdf5\n"; }

// ---- our own round trip ---------------------------------------------------------------------

TEST(Hdf5, RoundTripKeepsEveryValueNameAndOrder) {
  TempDir tmp;
  const Document doc = sample_document();
  write_document(doc, tmp.path / "doc.h5", hdf5_save());
  expect_same(doc, read_document(tmp.path / "doc.h5", hdf5_load()));
  // The extension alone picks the format too.
  expect_same(doc, read_document(tmp.path / "doc.h5"));
}

class Hdf5Options : public ::testing::TestWithParam<Options> {};

TEST_P(Hdf5Options, RoundTripIsExact) {
  TempDir tmp;
  const Document doc = sample_document();
  write_document(doc, tmp.path / "doc.h5", hdf5_save(GetParam()));
  expect_same(doc, read_document(tmp.path / "doc.h5", hdf5_load()));
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, Hdf5Options,
    ::testing::Values(Options{{"compression", "gzip"}}, Options{{"compression", "shuffle+gzip"}, {"level", "9"}},
                      Options{{"compression", "gzip"}, {"chunk", "2"}}, Options{{"chunk", "auto"}},
                      Options{{"chunk", "1"}}, Options{{"compression", "none"}, {"chunk", "none"}}));

TEST(Hdf5, CompressionShrinksCompressibleTensors) {
  TempDir tmp;
  Document doc;
  doc.add_tensor("zeros", Tensor::zeros(DType::f32, {1024, 1024}));
  write_document(doc, tmp.path / "plain.h5", hdf5_save());
  write_document(doc, tmp.path / "gzip.h5", hdf5_save({{"compression", "shuffle+gzip"}}));
  EXPECT_GT(fs::file_size(tmp.path / "plain.h5"), 4u << 20);
  EXPECT_LT(fs::file_size(tmp.path / "gzip.h5"), 256u << 10);
  expect_same(doc, read_document(tmp.path / "gzip.h5"));
}

TEST(Hdf5, SameDocumentGivesTheSameBytes) {
  TempDir tmp;
  const Document doc = sample_document();
  write_document(doc, tmp.path / "a.h5", hdf5_save());
  write_document(doc, tmp.path / "b.h5", hdf5_save());
  EXPECT_TRUE(file_bytes(tmp.path / "a.h5") == file_bytes(tmp.path / "b.h5"));
}

TEST(Hdf5, LargeTensorRoundTrips) {
  TempDir tmp;
  std::mt19937_64 rng(3);
  Document doc;
  doc.group("model").group("state").add_tensor("big", random_tensor(DType::f32, {4100, 4096}, rng));
  ASSERT_GE(doc.tensor_bytes(), 64u << 20);
  write_document(doc, tmp.path / "big.h5", hdf5_save());
  expect_same(doc, read_document(tmp.path / "big.h5"));
}

TEST(Hdf5, CheckpointSaveLoadVerify) {
  TempDir tmp;
  Checkpoint c;
  std::mt19937_64 rng(5);
  c.model_state.add_tensor("fc.weight", random_tensor(DType::f32, {16, 8}, rng));
  c.model_state.add_tensor("fc.bias", random_tensor(DType::f32, {16}, rng));
  c.optimizer.set("type", "adam").set("lr", 1e-3);
  c.trainer.set("epoch", int64_t{3});
  save(c, tmp.path / "c.h5");
  LoadOptions lo;
  lo.verify = true;
  Checkpoint back = load(tmp.path / "c.h5", lo);
  expect_same(c.model_state, back.model_state);
  expect_same(c.optimizer, back.optimizer);
}

TEST(Hdf5, OptionsAreChecked) {
  TempDir tmp;
  Document doc;
  doc.add_tensor("x", Tensor::zeros(DType::f32, {2}));
  const fs::path p = tmp.path / "x.h5";
  EXPECT_THROW(write_document(doc, p, hdf5_save({{"compression", "lzf"}})), UsageError);
  EXPECT_THROW(write_document(doc, p, hdf5_save({{"level", "5"}})), UsageError);
  EXPECT_THROW(write_document(doc, p, hdf5_save({{"compression", "gzip"}, {"level", "10"}})), UsageError);
  EXPECT_THROW(write_document(doc, p, hdf5_save({{"compression", "gzip"}, {"chunk", "none"}})), UsageError);
  EXPECT_THROW(write_document(doc, p, hdf5_save({{"chunk", "-3"}})), UsageError);
  EXPECT_THROW(write_document(doc, p, hdf5_save({{"colour", "red"}})), UsageError);
  write_document(doc, p, hdf5_save());
  EXPECT_THROW(read_document(p, hdf5_load({{"keras", "maybe"}})), UsageError);
  EXPECT_FALSE(fs::exists(tmp.path / "missing.h5"));
  EXPECT_THROW(read_document(tmp.path / "missing.h5", hdf5_load()), IoError);
}

TEST(Hdf5, ThreadsMayUseThePluginAtOnce) {
  TempDir tmp;
  const Document doc = sample_document();
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const fs::path p = tmp.path / ("t" + std::to_string(t) + ".h5");
      for (int i = 0; i < 3; ++i) {
        write_document(doc, p, hdf5_save({{"compression", "gzip"}}));
        Document back = read_document(p);
        if (back.tensor_count() != doc.tensor_count()) return;
      }
      ok[static_cast<size_t>(t)] = 1;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok, std::vector<int>(4, 1));
}

// ---- h5py reads what we write -----------------------------------------------------------------

class Hdf5H5pyReads : public ::testing::TestWithParam<Options> {};

TEST_P(Hdf5H5pyReads, EveryTensorAndAttributeBitForBit) {
  REQUIRE_H5PY();
  TempDir tmp;
  const Document doc = sample_document();
  write_document(doc, tmp.path / "doc.h5", hdf5_save(GetParam()));
  write_manifest(doc, tmp.path, "doc");
  int status = 0;
  std::string out = python("h5py_check_written.py", {tmp.path / "doc.h5", tmp.path / "doc.json"}, &status);
  EXPECT_EQ(status, 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Layouts, Hdf5H5pyReads,
                         ::testing::Values(Options{}, Options{{"compression", "shuffle+gzip"}},
                                           Options{{"chunk", "2"}}));

// ---- we read what h5py writes -----------------------------------------------------------------

TEST_F(H5pyFixtures, PlainCompressedAndChunkedTrees) {
  for (const std::string name : {"plain", "gzip", "shuffle_gzip", "chunked"}) {
    SCOPED_TRACE(name);
    Document want = read_manifest(fixture(name + ".json"));
    Document got = read_document(fixture(name + ".h5"));
    expect_equivalent(want, got);
    // h5py does not track creation order: members come by name (meta, made for the records, last).
    std::vector<std::string> names;
    for (const auto& n : got.children())
      if (n.name != "meta") names.push_back(n.name);
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  }
}

TEST_F(H5pyFixtures, ListingReadsNoTensorData) {
  // Damage one compressed chunk of one tensor: the tree still lists, other tensors still read,
  // and only reading the damaged one fails.
  const fs::path p = fixture("gzip.h5");
  std::string out;
  const std::string probe = std::string(kPython) + " -c \"import h5py; d = h5py.File('" + p.string() +
                            "')['a_rows']; i = d.id.get_chunk_info(0); print(i.byte_offset, i.size)\"";
  ASSERT_EQ(run(probe, &out), 0) << out;
  uint64_t offset = 0, size = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "%lu %lu", &offset, &size), 2) << out;
  std::string bytes = file_bytes(p);
  for (uint64_t i = offset; i < offset + size; ++i) bytes[i] = static_cast<char>(0x5a);
  TempDir tmp;
  put_bytes(tmp.path / "damaged.h5", bytes);
  auto reader = open(tmp.path / "damaged.h5");
  const Document& tree = reader->tree();
  ASSERT_NE(tree.find_tensor("a_rows"), nullptr);
  EXPECT_EQ(tree.find_tensor("a_rows")->shape(), (Shape{50, 40}));
  EXPECT_NO_THROW(reader->read("weights/w_f32"));
  try {
    reader->read("a_rows");
    ADD_FAILURE() << "a damaged chunk read without error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("damaged.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a_rows"), std::string::npos) << e.what();
  }
}

TEST_F(H5pyFixtures, KerasFilesBecomePyTorchStateDicts) {
  for (const std::string name : {"keras_model", "keras_weights", "keras_gzip"}) {
    SCOPED_TRACE(name);
    Document want = read_manifest(fixture(name + ".json"));
    Document got = read_document(fixture(name + ".h5"));
    ASSERT_NE(got.find_group_path("model/state"), nullptr);
    expect_same(want, *got.find_group_path("model/state"));
    const Group* keras = got.find_group_path("extra/keras");
    ASSERT_NE(keras, nullptr);
    EXPECT_EQ(got.find_group("meta")->attribute("producer") != nullptr, true);
    // As a checkpoint, the weights are the model's state.
    Checkpoint c = load(fixture(name + ".h5"));
    expect_same(want, c.model_state);
    if (name == "keras_model") {
      ASSERT_NE(keras->attribute("model_config"), nullptr);
      EXPECT_TRUE(value_equal(*keras->attribute("model_config"), Value(std::string("{\"class_name\": \"Sequential\"}"))));
      ASSERT_NE(keras->find_tensor_path("optimizer_weights/Adam/iter:0"), nullptr);
      EXPECT_NE(keras->find_group("model_weights"), nullptr);
    }
  }
}

TEST_F(H5pyFixtures, KerasSplitLayerAndWeightNamesAreJoined) {
  // Keras splits a name list too large for an object header into layer_names0, layer_names1,
  // ...; h5py lists them by name (layer_names10 before layer_names2), the list is in number order.
  Document raw = read_document(fixture("keras_split.h5"), hdf5_load({{"keras", "raw"}}));
  EXPECT_EQ(raw.attribute("layer_names"), nullptr);
  EXPECT_NE(raw.attribute("layer_names0"), nullptr);
  EXPECT_NE(raw.attribute("layer_names11"), nullptr);
  ASSERT_NE(raw.find_group("blocks"), nullptr);
  EXPECT_NE(raw.find_group("blocks")->attribute("weight_names1"), nullptr);

  const Document want = read_manifest(fixture("keras_split.json"));
  const Document got = read_document(fixture("keras_split.h5"));
  ASSERT_NE(got.find_group_path("model/state"), nullptr);
  // In model order, names and layouts as PyTorch has them.
  expect_same(want, *got.find_group_path("model/state"));
  const Group* keras = got.find_group_path("extra/keras");
  ASSERT_NE(keras, nullptr);
  EXPECT_NE(keras->attribute("keras_version"), nullptr);
  for (const auto& a : keras->attributes()) EXPECT_NE(a.name.rfind("layer_names", 0), 0u) << a.name;
  EXPECT_TRUE(keras->children().empty());
}

TEST_F(H5pyFixtures, KerasRawShowsTheFileAsStored) {
  Document raw = read_document(fixture("keras_model.h5"), hdf5_load({{"keras", "raw"}}));
  const Tensor* k = raw.find_tensor_path("model_weights/dense/dense/kernel:0");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape(), (Shape{1024, 4096}));
  EXPECT_NE(raw.attribute("keras_version"), nullptr);
  EXPECT_EQ(raw.find_group("model"), nullptr);
}

TEST_F(H5pyFixtures, ConvertingAKerasFileWritesTheStateDict) {
  TempDir tmp;
  ConvertOptions co;
  co.to = "hdf5";
  convert(fixture("keras_model.h5"), tmp.path / "converted.h5", co);
  Document want = read_manifest(fixture("keras_model.json"));
  Document got = read_document(tmp.path / "converted.h5");
  ASSERT_NE(got.find_group_path("model/state"), nullptr);
  expect_same(want, *got.find_group_path("model/state"));
}

// The plugin marks a file another tool wrote (meta/@hdf5_as_stored) for the host's layout, which
// takes the mark away: no reader ever sees it. A Keras file's own /meta group is kept under
// extra/keras; a dataset at /meta leaves no place for the mark, so such a file is listed as it is.
TEST_F(H5pyFixtures, TheAsStoredMarkNeverShowsAndKerasFilesKeepTheirOwnMeta) {
  TempDir tmp;
  for (const std::string name : {"plain", "keras_weights"})
    for (const char* keras : {"auto", "raw"}) {
      SCOPED_TRACE(name + " keras=" + keras);
      const Document d = read_document(fixture(name + ".h5"), hdf5_load({{"keras", keras}}));
      if (const Group* meta = d.find_group("meta")) {
        EXPECT_EQ(meta->attribute("hdf5_as_stored"), nullptr);
      }
    }
  const fs::path own = tmp.path / "own_meta.h5", data = tmp.path / "meta_dataset.h5";
  fs::copy_file(fixture("keras_weights.h5"), own);
  fs::copy_file(fixture("keras_weights.h5"), data);
  const fs::path script = tmp.path / "edit.py";
  {
    std::ofstream py(script);
    py << "import sys, h5py\n"
          "with h5py.File(sys.argv[1], 'a') as f:\n    f.create_group('meta').attrs['note'] = 'mine'\n"
          "with h5py.File(sys.argv[2], 'a') as f:\n    f['meta'] = [1.0, 2.0]\n";
  }
  ASSERT_EQ(run(std::string(kPython) + " " + quoted(script) + " " + quoted(own) + " " + quoted(data)), 0);
  const Document mapped = read_document(own);
  ASSERT_NE(mapped.find_group_path("model/state"), nullptr);
  expect_same(read_manifest(fixture("keras_weights.json")), *mapped.find_group_path("model/state"));
  const Group* kept = mapped.find_group_path("extra/keras/meta");
  ASSERT_NE(kept, nullptr);
  ASSERT_NE(kept->attribute("note"), nullptr);
  EXPECT_TRUE(value_equal(*kept->attribute("note"), Value(std::string("mine"))));
  EXPECT_EQ(mapped.find_group("meta")->attribute("hdf5_as_stored"), nullptr);
  const Document as_is = read_document(data);
  EXPECT_EQ(as_is.find_group("model"), nullptr);
  EXPECT_NE(as_is.find_tensor("meta"), nullptr);
}

// ---- damaged files ----------------------------------------------------------------------------

namespace {

// Opening and reading everything either works or fails with one of ckpt's typed errors.
void expect_typed_failure_or_success(const fs::path& p, bool must_fail) {
  try {
    Document d = read_document(p, hdf5_load());
    EXPECT_FALSE(must_fail) << p << " read without error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(p.filename().string()), std::string::npos) << e.what();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(p.filename().string()), std::string::npos) << e.what();
  } catch (const PluginError& e) {
    ADD_FAILURE() << "internal error instead of a format error: " << e.what();
  }
}

}  // namespace

TEST(Hdf5, TruncatedFilesGiveFormatErrors) {
  TempDir tmp;
  write_document(sample_document(), tmp.path / "doc.h5", hdf5_save());
  const std::string bytes = file_bytes(tmp.path / "doc.h5");
  for (size_t len : {size_t{0}, size_t{7}, size_t{8}, size_t{40}, size_t{512}, bytes.size() / 2, bytes.size() - 1}) {
    SCOPED_TRACE(len);
    const fs::path p = tmp.path / ("cut" + std::to_string(len) + ".h5");
    put_bytes(p, bytes.substr(0, len));
    EXPECT_THROW(read_document(p, hdf5_load()), FormatError);
    expect_typed_failure_or_success(p, true);
  }
  try {
    const fs::path p = tmp.path / ("cut" + std::to_string(bytes.size() / 2) + ".h5");
    read_document(p, hdf5_load());
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(Hdf5, GarbageGivesFormatErrors) {
  TempDir tmp;
  std::mt19937 rng(9);
  std::string junk(4096, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  put_bytes(tmp.path / "junk.h5", junk);
  EXPECT_THROW(read_document(tmp.path / "junk.h5", hdf5_load()), FormatError);
  put_bytes(tmp.path / "sig.h5", std::string("\x89HDF\r\n\x1a\n", 8) + junk);
  EXPECT_THROW(read_document(tmp.path / "sig.h5", hdf5_load()), FormatError);
  try {
    read_document(tmp.path / "sig.h5", hdf5_load());
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("sig.h5"), std::string::npos) << e.what();
  }
}

// Every byte of a small file, flipped in turn: each copy either reads or fails with a typed
// error; never a crash, a hang or an internal error. This covers the places where libhdf5 1.10
// itself would fault or loop (damaged global heaps, chunks, shapes), which the plugin checks
// before libhdf5 parses them.
TEST(Hdf5, EverySingleByteDamageIsCaughtOrHarmless) {
  TempDir tmp;
  Document doc;
  doc.set("a", int64_t{1}).set("s", "text");
  doc.group("g").set("b", true).add_tensor("t", Tensor::zeros(DType::f32, {4}));
  doc.add_tensor("u", Tensor::zeros(DType::i64, {2, 2}));
  write_document(doc, tmp.path / "small.h5", hdf5_save({{"compression", "gzip"}}));
  const std::string bytes = file_bytes(tmp.path / "small.h5");
  const fs::path p = tmp.path / "damaged.h5";
  // Holding a reader keeps the plugin loaded across the loop, which is what keeps it quick.
  auto keep_loaded = open(tmp.path / "small.h5", hdf5_load());
  // Every byte in the plain build; the sanitizer build (about 40x slower per open of a damaged
  // file) takes every fourth to keep CI inside its time: memory errors show up there, wrong
  // answers in the plain build.
#ifdef CKPT_TEST_ASAN
  const size_t stride = 4;
#else
  const size_t stride = 1;
#endif
  ckpt_test::ByteFlips flips;
  flips.stride = stride;
  ckpt_test::flip_every_byte(bytes, p, flips, [&](size_t at, uint8_t) {
    SCOPED_TRACE(at);
    expect_typed_failure_or_success(p, false);
  });
}

// The filters h5py users meet: h5py's LZF (decoded by the plugin with liblzf), and LZ4, BZip2
// and Blosc through the filter plugins libhdf5 loads (Debian's hdf5-filter-plugin packages);
// every dataset reads with its exact bytes. A filter no decoder exists for is named.
TEST(Hdf5, FilteredDatasetsReadOrNameTheirFilter) {
  REQUIRE_H5PY();
  TempDir tmp;
  int status = 0;
  const std::string out = python("h5py_filters.py", {tmp.path}, &status);
  ASSERT_EQ(status, 0) << out;
  const Document doc = read_document(tmp.path / "filters.h5", hdf5_load());
  int read = 0;
  for (const char* name : {"lzf", "lzf_shuffle", "lzf_random", "lz4", "bzip2", "blosc"}) {
    SCOPED_TRACE(name);
    const Tensor* t = doc.find_tensor(name);
    ASSERT_TRUE(t);
    const std::string want = file_bytes(tmp.path / (std::string(name) + ".bin"));
    ASSERT_EQ(t->nbytes(), want.size());
    EXPECT_EQ(std::memcmp(t->bytes().data(), want.data(), want.size()), 0);
    ++read;
  }
  EXPECT_EQ(read, 6);
  try {
    read_document(tmp.path / "bitshuffle.h5", hdf5_load());
    ADD_FAILURE() << "read without error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("/bitshuffle: uses HDF5 filter 32008, for which no decoder is available"),
              std::string::npos) << e.what();
  }
}

// What a document cannot hold (an enum dataset, a group attribute of compound records) is listed
// in meta/@unread, and a conversion names it as a loss: refused without --allow-lossy, recorded
// in meta/conversion/losses with it, never dropped in silence. String and compound datasets and
// a dataset's attributes are read now (StringAndCompoundDatasetsAndDatasetAttributesComeBack).
TEST(Hdf5, WhatADocumentCannotHoldIsNamedNotDropped) {
  REQUIRE_H5PY();
  TempDir tmp;
  int status = 0;
  const fs::path src = tmp.path / "unread.h5";
  const std::string out = python("h5py_unread.py", {src}, &status);
  ASSERT_EQ(status, 0) << out;
  const Document doc = read_document(src, hdf5_load());
  ASSERT_TRUE(doc.find_tensor("w"));
  const Group* meta = doc.find_group("meta");
  ASSERT_TRUE(meta);
  const auto& unread = std::get<std::vector<std::string>>(*meta->attribute("unread"));
  // The soft link is kept, as a link (SoftLinksComeBackAsLinks), not named as unread.
  EXPECT_EQ(std::get<std::vector<std::string>>(*meta->attribute("hdf5_soft_link_paths")), std::vector<std::string>{"/alias"});
  const std::vector<std::string> want = {"/: its attribute 'bounds' (a type no attribute value holds)",
                                         "/color: a dataset of enums"};
  EXPECT_EQ(unread, want);
  // Strings are values of their group, the compound a group of columns, the attribute in meta.
  EXPECT_EQ(std::get<std::string>(*doc.attribute("name")), "resnet");
  EXPECT_EQ(std::get<std::vector<std::string>>(*doc.attribute("labels")), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(std::get<std::vector<std::string>>(*doc.attribute("vlabels")), (std::vector<std::string>{"a", "bb"}));
  ASSERT_TRUE(doc.find_tensor_path("rec/a"));
  EXPECT_EQ(doc.find_tensor_path("rec/b")->dtype(), DType::f64);
  EXPECT_EQ(std::get<std::string>(*doc.find_group_path("meta/hdf5_dataset_attributes/%2Fw")->attribute("units")), "m/s");
  ConvertOptions o;
  o.to = "msgpack";
  o.fsync = false;
  try {
    convert(src, tmp.path / "out.msgpack", o);
    ADD_FAILURE() << "converted without --allow-lossy";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("/color: a dataset of enums (not read from the source)"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path / "out.msgpack"));
  o.allow_lossy = true;
  const ConvertReport r = convert(src, tmp.path / "out.msgpack", o);
  EXPECT_EQ(r.losses.size(), want.size());
  const Document back = read_document(tmp.path / "out.msgpack");
  EXPECT_FALSE(back.find_group("meta")->attribute("unread")) << "the output claims nothing it does not hold";
  EXPECT_EQ(std::get<std::vector<std::string>>(*back.find_group_path("meta/conversion")->attribute("losses")).size(), want.size());
}

// The inputs fuzz_hdf5 found that crashed or hung libhdf5 (scripts/fuzz.sh), kept as they were
// found: each is a typed error naming the file, read under the sanitizer build as well.
TEST(Hdf5, FilesTheFuzzerFoundAreTypedErrors) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kScripts / "fuzz_found")) {
    SCOPED_TRACE(entry.path().string());
    ++files;
    try {
      read_document(entry.path(), hdf5_load());
      ADD_FAILURE() << "read without error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(entry.path().filename().string()), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(files, 1);
}

// Metadata addresses that lie where no metadata can be (undefined, 0, past the end, wrapping
// around), in an object header whose checksum still matches: each file reads (an undefined
// heap address means "no links", as h5py sees it too) or fails naming the file. libhdf5 1.10's
// own driver crashed on an undefined B-tree address (h5_read_driver.hpp). Also object header
// continuations and a driver information block libhdf5 would allocate GiBs for, link messages
// longer than themselves or of another version or flags, a compact dataset holding fewer bytes
// than its shape, a chunk dimension of 0, names past the local heap of an old-style group or of
// an external file list, and a
// global heap collection it would loop on, read while it opens a virtual dataset.
TEST(Hdf5, MetadataAddressesOutsideTheFileAreErrors) {
  REQUIRE_H5PY();
  TempDir tmp;
  int status = 0;
  const std::string out = python("h5py_bad_addresses.py", {tmp.path}, &status);
  ASSERT_EQ(status, 0) << out;
  std::istringstream lines(out);
  std::string line;
  int files = 0;
  while (std::getline(lines, line)) {
    SCOPED_TRACE(line);
    ++files;
    expect_typed_failure_or_success(line, false);
  }
  EXPECT_EQ(files, 32);
  for (const char* name : {"names_undefined.h5", "names_wraps.h5", "names_beyond.h5", "order_wraps.h5",
                           "driver_info.h5", "cont_huge.h5", "cont_undefined.h5", "cont_beyond.h5", "link_name.h5", "compact_short.h5",
                           "vds_heap_loop.h5", "link_version.h5", "link_flags.h5", "chunk_zero.h5", "snod_name.h5",
                           "btree_key.h5", "efl_name.h5", "efl_empty.h5"}) {
    try {
      read_document(tmp.path / name, hdf5_load());
      ADD_FAILURE() << name << " read without error";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}


// ---- depth ------------------------------------------------------------------------------------

// The reader takes groups nested deeper than 256 as damage, so the writer refuses to write them:
// a 1024-deep json or msgpack document once converted to a .h5 that ckpt then refused.
TEST(Hdf5Limits, WriterRefusesGroupsNestedDeeperThanTheReaderReads) {
  TempDir tmp;
  auto chain = [](int depth, bool with_tensor) {
    Document doc;
    Group* g = &doc;
    for (int i = 0; i < depth; ++i) g = &g->add_group("g");
    if (with_tensor) g->add_tensor("t", Tensor::zeros(DType::u8, {1}));
    return doc;
  };
  const fs::path deep = tmp.path / "deep.h5";
  for (bool with_tensor : {false, true}) {
    try {
      write_document(chain(257, with_tensor), deep, hdf5_save());
      FAIL() << "a group 257 levels deep was written";
    } catch (const LimitError& e) {
      EXPECT_NE(std::string(e.what()).find("deeper than 256"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("/g/g/g"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(tmp.path)) << "the refused save left a file";
  }
  for (bool with_tensor : {false, true}) {
    const Document ok = chain(256, with_tensor);
    write_document(ok, deep, hdf5_save());
    expect_same(ok, read_document(deep, hdf5_load()));
  }
}
