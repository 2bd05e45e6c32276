// Slices of chunked, compressed datasets, h5py's and ours, against numpy's slicing of the same
// data; and a slice decodes only the chunks it touches: damage outside it goes unnoticed, the
// full read reports it.
#include "hdf5_test_support.hpp"

using namespace hdf5_test;

namespace {

struct Box {
  std::string tensor;
  Shape start, count;
};

std::string describe(const Box& b) { return b.tensor + " at " + shape_string(b.start) + " of " + shape_string(b.count); }

// numpy's cut of each box from `file` (numpy_slices.py).
std::vector<Tensor> numpy_slices(const fs::path& file, const std::vector<Box>& boxes, const fs::path& folder) {
  json j = json::array();
  for (const Box& b : boxes) j.push_back({{"dataset", b.tensor}, {"start", b.start}, {"count", b.count}});
  fs::create_directories(folder);
  std::ofstream(folder / "boxes.json") << j.dump();
  int status = 0;
  const std::string out = python("numpy_slices.py", {file, folder / "boxes.json", folder}, &status);
  EXPECT_EQ(status, 0) << out;
  std::vector<Tensor> cuts;
  if (status != 0) return cuts;
  const json listed = json::parse(std::ifstream(folder / "slices.json"));
  for (size_t i = 0; i < listed.size(); ++i) {
    Tensor t = Tensor::empty(dtype_from_name(listed[i].at("dtype").get<std::string>()),
                             listed[i].at("shape").get<Shape>());
    const std::string bytes = file_bytes(folder / (std::to_string(i) + ".bin"));
    EXPECT_EQ(bytes.size(), t.nbytes()) << describe(boxes[i]);
    std::memcpy(t.mutable_bytes().data(), bytes.data(), std::min<size_t>(bytes.size(), t.nbytes()));
    cuts.push_back(std::move(t));
  }
  return cuts;
}

void expect_slices(FormatReader& reader, const std::vector<Box>& boxes, const std::vector<Tensor>& want) {
  ASSERT_EQ(boxes.size(), want.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    SCOPED_TRACE(describe(boxes[i]));
    const Tensor got = reader.read_slice(boxes[i].tensor, boxes[i].start, boxes[i].count);
    EXPECT_EQ(got.dtype(), want[i].dtype());
    EXPECT_EQ(got.shape(), want[i].shape());
    EXPECT_TRUE(got.bit_equal(want[i]));
  }
}

// `read` fails with a FormatError whose message holds every one of `parts`.
template <class F>
void expect_format_error(F&& read, const std::vector<std::string>& parts) {
  try {
    read();
    ADD_FAILURE() << "read without error";
  } catch (const FormatError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << p << " in " << e.what();
  }
}

void damage_chunk(const fs::path& file, const std::string& dataset, const std::string& coords, const std::string& mode) {
  int status = 0;
  const std::string out = python("h5py_damage_chunk.py", {file, dataset, coords, mode}, &status);
  ASSERT_EQ(status, 0) << out;
}

}  // namespace

TEST_F(H5pyFixtures, SlicesOfChunkedDatasetsEqualNumpys) {
  const std::vector<Box> boxes = {
      {"gzip_f32", {0, 0}, {50, 40}},          // chunks (7, 6): whole, with partial edge chunks
      {"gzip_f32", {14, 6}, {14, 12}},         // exactly chunks [2..3, 1..2]
      {"gzip_f32", {3, 5}, {30, 33}},          // across chunk boundaries
      {"gzip_f32", {45, 37}, {5, 3}},          // inside the last, partial chunk
      {"gzip_f32", {20, 13}, {1, 1}},
      {"gzip_f32", {0, 0}, {1, 40}},
      {"gzip_f32", {0, 39}, {50, 1}},
      {"shuffle_fletcher_f64", {0, 0, 0}, {23, 17, 5}},
      {"shuffle_fletcher_f64", {3, 4, 1}, {9, 11, 3}},
      {"shuffle_fletcher_f64", {22, 16, 4}, {1, 1, 1}},
      {"shuffle_fletcher_f64", {1, 0, 0}, {2, 17, 5}},
      {"fletcher_u8", {0, 0}, {31, 9}},
      {"fletcher_u8", {5, 2}, {20, 7}},
      {"be_u16", {0, 0}, {40, 12}},            // big-endian uint16: converted to int32
      {"be_u16", {8, 4}, {19, 7}},
      {"bool_mask", {0}, {33}},
      {"bool_mask", {7}, {18}},
      {"f16_rank4", {0, 0, 0, 0}, {6, 5, 4, 3}},
      {"f16_rank4", {1, 2, 1, 1}, {4, 3, 3, 2}},
      {"sparse_i32", {0, 0}, {30, 30}},        // written and never-written chunks
      {"sparse_i32", {5, 5}, {20, 20}},
      {"sparse_i32", {0, 0}, {10, 10}},        // only a never-written chunk: the fill value
  };
  TempDir tmp;
  const auto want = numpy_slices(fixture("sliced.h5"), boxes, tmp.path / "cuts");
  auto reader = open(fixture("sliced.h5"));
  expect_slices(*reader, boxes, want);
  expect_equivalent(read_manifest(fixture("sliced.json")), read_document(fixture("sliced.h5")));
}

TEST(Hdf5, SlicesOfCompressedTensorsWeWroteEqualNumpys) {
  REQUIRE_H5PY();
  TempDir tmp;
  std::mt19937_64 rng(11);
  Document doc;
  doc.add_tensor("w", random_tensor(DType::f32, {50, 40}, rng));
  doc.group("g").add_tensor("i16", random_tensor(DType::i16, {33, 17, 3}, rng));
  doc.add_tensor("bf", random_tensor(DType::bf16, {20, 6}, rng));
  doc.add_tensor("mask", random_tensor(DType::boolean, {37}, rng));
  doc.add_tensor("h", random_tensor(DType::f16, {9, 10}, rng));
  const std::vector<Box> boxes = {
      {"w", {0, 0}, {50, 40}},     {"w", {6, 0}, {15, 40}},   {"w", {13, 11}, {30, 7}},
      {"w", {49, 39}, {1, 1}},     {"g/i16", {0, 0, 0}, {33, 17, 3}}, {"g/i16", {4, 2, 1}, {25, 9, 2}},
      {"bf", {0, 0}, {20, 6}},     {"bf", {2, 1}, {11, 4}},   {"mask", {0}, {37}},
      {"mask", {5}, {30}},         {"h", {3, 3}, {6, 7}},
  };
  // Chunks of 7 rows (partial last chunks), and of 3 rows with shuffling.
  const std::pair<std::string, Options> layouts[] = {
      {"gzip", {{"compression", "gzip"}, {"chunk", "7"}}},
      {"shuffle", {{"compression", "shuffle+gzip"}, {"chunk", "3"}, {"level", "9"}}}};
  for (const auto& [name, options] : layouts) {
    SCOPED_TRACE(name);
    const fs::path p = tmp.path / (name + ".h5");
    write_document(doc, p, hdf5_save(options));
    const auto want = numpy_slices(p, boxes, tmp.path / ("cuts-" + name));
    auto reader = open(p);
    expect_slices(*reader, boxes, want);
    expect_same(doc, read_document(p));
  }
}

TEST_F(H5pyFixtures, ASliceDecodesOnlyTheChunksItTouches) {
  TempDir tmp;
  const std::vector<Box> untouched = {
      {"gzip_f32", {14, 6}, {14, 12}},  // away from chunks [0,0] and [0,36]
      {"fletcher_u8", {8, 0}, {23, 9}},
      {"shuffle_fletcher_f64", {0, 0, 0}, {4, 17, 5}},
  };
  const auto want = numpy_slices(fixture("sliced.h5"), untouched, tmp.path / "cuts");
  const fs::path p = tmp.path / "damaged.h5";
  fs::copy_file(fixture("sliced.h5"), p);
  damage_chunk(p, "gzip_f32", "0,0", "garbage");
  // A valid deflate stream of fewer bytes than a chunk: libhdf5 1.10 would copy past its buffer.
  damage_chunk(p, "gzip_f32", "0,36", "short");
  damage_chunk(p, "fletcher_u8", "0,0", "garbage");
  damage_chunk(p, "shuffle_fletcher_f64", "4,5,2", "garbage");

  auto reader = open(p);
  expect_slices(*reader, untouched, want);
  EXPECT_NO_THROW(reader->read("be_u16"));
  expect_format_error([&] { reader->read("gzip_f32"); }, {"damaged.h5", "gzip_f32 chunk at [0,0]", "damaged (zlib"});
  const Shape start{0, 36}, count{7, 4};
  expect_format_error([&] { reader->read_slice("gzip_f32", start, count); },
                      {"damaged.h5", "gzip_f32 chunk at [0,36]", "decodes to 10 bytes; a chunk holds 168"});
  expect_format_error([&] { reader->read("fletcher_u8"); }, {"fletcher_u8 chunk at [0,0]", "Fletcher-32"});
  expect_format_error([&] { reader->read("shuffle_fletcher_f64"); },
                      {"shuffle_fletcher_f64 chunk at [4,5,2]", "Fletcher-32"});
}

TEST(Hdf5, ASliceOfATensorWeWroteDecodesOnlyItsChunks) {
  REQUIRE_H5PY();
  TempDir tmp;
  std::mt19937_64 rng(12);
  Document doc;
  doc.add_tensor("w", random_tensor(DType::f32, {50, 40}, rng));
  const fs::path p = tmp.path / "ours.h5";
  write_document(doc, p, hdf5_save({{"compression", "gzip"}, {"chunk", "5"}}));
  const std::vector<Box> untouched = {{"w", {10, 0}, {20, 40}}, {"w", {12, 3}, {7, 30}}};
  const auto want = numpy_slices(p, untouched, tmp.path / "cuts");
  damage_chunk(p, "w", "0,0", "garbage");
  damage_chunk(p, "w", "45,0", "short");
  auto reader = open(p);
  expect_slices(*reader, untouched, want);
  expect_format_error([&] { reader->read("w"); }, {"ours.h5", "/w chunk at [0,0]"});
  const Shape start{44, 0}, count{6, 40};
  expect_format_error([&] { reader->read_slice("w", start, count); },
                      {"ours.h5", "/w chunk at [45,0]", "decodes to 10 bytes; a chunk holds 800"});
}
