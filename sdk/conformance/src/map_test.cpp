// map() must give the same bytes as read(), and those bytes must stay valid for as long as the
// view lives, even after the reader that made it is gone.
#include "kit.hpp"

namespace ckpt::conformance {
namespace {

class Map : public FormatTest {
 protected:
  bool writes_files() const override { return true; }
  Document tensors_of_every_dtype() {
    Rng r = rng();
    Document d;
    for (DType t : held_dtypes(info())) {
      d.add_tensor("m_" + std::string(name(t)), random_tensor(t, {5, 3}, r));
      d.add_tensor("s_" + std::string(name(t)), random_tensor(t, {}, r));
      d.add_tensor("e_" + std::string(name(t)), random_tensor(t, {0}, r));
    }
    return d;
  }
};

TEST_P(Map, ViewsEqualRead) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_MAP);
  Document d = tensors_of_every_dtype();
  fs::path p = file("map");
  write(d, p);
  auto reader = format().open_reader(p, {});
  size_t mapped = 0;
  d.for_each_tensor([&](const std::string& path, const Tensor& want) {
    SCOPED_TRACE(path);
    Tensor got = reader->read(path);
    EXPECT_TRUE(got.bit_equal(want)) << "read() differs from what was written";
    std::optional<Tensor> view = reader->map(path);
    if (!view) {
      // The host declines only unaligned views; one-byte elements are always aligned.
      // (A block dtype is read a byte at a time: it always has a view.)
      EXPECT_TRUE(!is_block(want.dtype()) && itemsize(want.dtype()) > 1) << "map() gave no view of a " << name(want.dtype()) << " tensor";
      return;
    }
    ++mapped;
    EXPECT_EQ(view->storage_kind(), StorageKind::mapped);
    EXPECT_TRUE(view->bit_equal(got)) << "map() differs from read()";
  });
  EXPECT_GT(mapped, 0u) << "the format declares 'map' but map() never gave a view";
}

TEST_P(Map, ViewOutlivesItsReader) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_MAP);
  Document d = tensors_of_every_dtype();
  fs::path p = file("map_outlives");
  write(d, p);
  std::vector<std::pair<std::string, Tensor>> views;
  {
    auto reader = format().open_reader(p, {});
    d.for_each_tensor([&](const std::string& path, const Tensor&) {
      if (auto v = reader->map(path)) views.emplace_back(path, *v);
    });
  }
  ASSERT_FALSE(views.empty()) << "the format declares 'map' but map() never gave a view";
  for (const auto& [path, view] : views)
    EXPECT_TRUE(view.bit_equal(*d.find_tensor_path(path))) << path << " changed after its reader was destroyed";
}

TEST_P(Map, LoadWithMapEqualsLoadWithoutMap) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_MAP);
  Rng r = rng();
  Document d = representative(info(), r);
  fs::path p = file("map_load");
  write(d, p);
  auto reader = format().open_reader(p, {});
  Comparison c = compare(reader->load(false), reader->load(true));
  EXPECT_TRUE(c.equal()) << "load(map) differs from load(read):" << c.report();
}

INSTANTIATE_TEST_SUITE_P(Conformance, Map, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(map)
