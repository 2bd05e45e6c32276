// read_slice() must give exactly the box of the tensor that read() gives, whether the plugin
// reads the box itself or the host cuts it from the whole tensor.
#include "kit.hpp"

#include <cstring>

namespace ckpt::conformance {
namespace {

// The box of `t`, element by element through a multi-index: deliberately not the host's copy.
// A block dtype's items are its blocks: the last dimension counts blocks (boxes take whole rows).
Tensor reference_box(const Tensor& t, const std::vector<int64_t>& start, const std::vector<int64_t>& count) {
  Tensor out = Tensor::empty(t.dtype(), Shape(count.begin(), count.end()));
  const size_t item = block_bytes(t.dtype()), per = block_elements(t.dtype()), r = t.rank();
  Shape dims = t.shape();
  std::vector<int64_t> first = start, box = count;
  if (per > 1 && r > 0) {
    dims.back() /= static_cast<int64_t>(per);
    first.back() /= static_cast<int64_t>(per);
    box.back() /= static_cast<int64_t>(per);
  }
  uint64_t n = 1;
  for (int64_t c : box) n *= static_cast<uint64_t>(c);
  std::vector<int64_t> idx(r, 0);
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t src = 0;
    for (size_t i = 0; i < r; ++i) src = src * static_cast<uint64_t>(dims[i]) + static_cast<uint64_t>(first[i] + idx[i]);
    std::memcpy(out.mutable_bytes().data() + k * item, t.bytes().data() + src * item, item);
    for (size_t i = r; i-- > 0;) {
      if (++idx[i] < box[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

class Slice : public FormatTest {};

TEST_P(Slice, BoxesEqualTheSameBoxOfRead) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  Rng r = rng();
  Document d;
  const std::vector<DType> dtypes = held_dtypes(info());
  const std::vector<Shape> shapes = {{7, 5, 3}, {6, 4}, {9}, {}, {2, 1, 3, 2}};
  for (size_t i = 0; i < shapes.size(); ++i)
    d.add_tensor("t" + std::to_string(i), random_tensor(dtypes[i % dtypes.size()], shapes[i], r));
  fs::path p = file("slice");
  write(d, p);
  auto reader = format().open_reader(p, {});
  d.for_each_tensor([&](const std::string& path, const Tensor& want) {
    SCOPED_TRACE(path);
    const Shape& shape = want.shape();
    std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes;
    boxes.emplace_back(std::vector<int64_t>(shape.size(), 0), shape);  // the whole tensor
    for (int k = 0; k < 6; ++k) {
      std::vector<int64_t> s(shape.size()), c(shape.size());
      for (size_t i = 0; i < shape.size(); ++i) {
        s[i] = static_cast<int64_t>(r.below(static_cast<uint64_t>(shape[i])));
        c[i] = 1 + static_cast<int64_t>(r.below(static_cast<uint64_t>(shape[i] - s[i])));
      }
      // A block dtype's rows are runs of blocks: a box takes whole rows (core's read_slice).
      if (is_block(want.dtype()) && !shape.empty()) s.back() = 0, c.back() = shape.back();
      boxes.emplace_back(s, c);
    }
    if (!shape.empty() && !(is_block(want.dtype()) && shape.size() == 1)) {  // an empty box (of whole rows)
      std::vector<int64_t> s(shape.size(), 0), c = shape;
      c[0] = 0;
      boxes.emplace_back(s, c);
    }
    for (const auto& [s, c] : boxes) {
      Tensor got = reader->read_slice(path, s, c);
      EXPECT_EQ(got.shape(), Shape(c.begin(), c.end()));
      EXPECT_TRUE(got.bit_equal(reference_box(want, s, c)))
          << "read_slice differs from the same box of the written tensor, start " << shape_string(s)
          << " count " << shape_string(c);
    }
  });
}

TEST_P(Slice, BoxesOutsideTheTensorAreRefused) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  Rng r = rng();
  Document d;
  d.add_tensor("t", random_tensor(held_dtypes(info()).front(), {4, 3}, r));
  fs::path p = file("slice_bounds");
  write(d, p);
  auto reader = format().open_reader(p, {});
  const std::vector<int64_t> s0{0, 0}, s1{3, 0}, c_over{2, 3}, c_rank{1}, s_neg{-1, 0}, c1{1, 1};
  EXPECT_TRUE(error_from<UsageError>([&] { reader->read_slice("t", s1, c_over); }));
  EXPECT_TRUE(error_from<UsageError>([&] { reader->read_slice("t", s0, c_rank); }));
  EXPECT_TRUE(error_from<UsageError>([&] { reader->read_slice("t", s_neg, c1); }));
}

INSTANTIATE_TEST_SUITE_P(Conformance, Slice, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(slice)
