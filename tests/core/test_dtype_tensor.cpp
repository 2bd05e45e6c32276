#include <ckpt/dtype.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/tensor.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

using namespace ckpt;

TEST(DType, NamesRoundTripAndUnknownNameIsAUsageError) {
  for (int d = 1; d <= 10; ++d) EXPECT_EQ(dtype_from_name(name(static_cast<DType>(d))), static_cast<DType>(d));
  EXPECT_THROW(dtype_from_name("float32"), UsageError);
  EXPECT_EQ(itemsize(DType::bf16), 2u);
  EXPECT_EQ(itemsize(DType::boolean), 1u);
}

TEST(DType, EveryHalfConvertsToFloatAndBackExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_bf16(f), h) << std::hex << h;
  }
}

TEST(DType, HalfRoundsToNearestEven) {
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 4096)), 1.0f);  // a tie rounds to even
  EXPECT_EQ(f16_to_f32(f32_to_f16(65520.0f)), INFINITY);
  EXPECT_EQ(f16_to_f32(f32_to_f16(5.9604645e-08f)), 5.9604645e-08f);  // smallest subnormal
}

TEST(DType, CastSaturatesIntegersAndKeepsLargeInt64Exact) {
  std::vector<int64_t> in = {int64_t{1} << 60, -5, 300};
  std::vector<int32_t> out(3);
  cast_elements(DType::i64, reinterpret_cast<const std::byte*>(in.data()), DType::i32,
                reinterpret_cast<std::byte*>(out.data()), 3);
  EXPECT_EQ(out[0], INT32_MAX);
  EXPECT_EQ(out[1], -5);
  EXPECT_EQ(out[2], 300);
  std::vector<float> f = {1.5f, -2.5f, 1e10f};
  std::vector<int8_t> o8(3);
  cast_elements(DType::f32, reinterpret_cast<const std::byte*>(f.data()), DType::i8,
                reinterpret_cast<std::byte*>(o8.data()), 3);
  EXPECT_EQ(o8[0], 2);
  EXPECT_EQ(o8[1], -2);
  EXPECT_EQ(o8[2], 127);
}

TEST(Tensor, ScalarsEmptyAndViewsShareStorage) {
  Tensor s = Tensor::zeros(DType::f64, {});
  EXPECT_EQ(s.numel(), 1u);
  EXPECT_EQ(s.nbytes(), 8u);
  Tensor e = Tensor::zeros(DType::f32, {3, 0, 2});
  EXPECT_EQ(e.numel(), 0u);
  EXPECT_EQ(e.nbytes(), 0u);
  Tensor t = Tensor::from<float>(DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor view = t.reshape({3, 2});
  view.mutable_data<float>()[0] = 42;
  EXPECT_EQ(t.data<float>()[0], 42);  // no copy on reshape
  Tensor copy = t.clone();
  copy.mutable_data<float>()[0] = 7;
  EXPECT_EQ(t.data<float>()[0], 42);
  EXPECT_TRUE(t.bit_equal(view.reshape({2, 3})));
  EXPECT_FALSE(t.bit_equal(copy));
  EXPECT_THROW(t.reshape({4}), UsageError);
}

TEST(Tensor, BorrowedConstAndMappedStorageIsReadOnly) {
  const float data[4] = {1, 2, 3, 4};
  Tensor b = Tensor::borrow(DType::f32, {4}, static_cast<const void*>(data));
  EXPECT_EQ(b.storage_kind(), StorageKind::borrowed);
  EXPECT_EQ(b.data<float>()[3], 4);
  EXPECT_THROW(b.mutable_bytes(), UsageError);
  Tensor listed(DType::f32, {2}, nullptr);
  EXPECT_FALSE(listed.defined());
  EXPECT_THROW(listed.bytes(), UsageError);
  EXPECT_THROW(Tensor(DType::f32, {8}, Storage::allocate(4)), UsageError);
  EXPECT_THROW(Tensor::zeros(DType::f32, {-1}), UsageError);
}
