#include <ckpt/dtype.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/tensor.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using namespace ckpt;

TEST(DType, NamesRoundTripAndUnknownNameIsAUsageError) {
  for (int d = 1; d <= static_cast<int>(kLastDType); ++d) EXPECT_EQ(dtype_from_name(name(static_cast<DType>(d))), static_cast<DType>(d));
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

namespace {
// The /proc/self/smaps fields (in kB, or 0/1 for THPeligible) of the mapping holding `p`.
struct MappingFacts {
  long rss_kb = -1;
  int thp_eligible = -1;
};
MappingFacts facts_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  MappingFacts f;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      if (inside) break;
      inside = lo <= a && a < hi;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("Rss:", 0) == 0) f.rss_kb = std::stol(line.substr(4));
    if (line.rfind("THPeligible:", 0) == 0) f.thp_eligible = std::stoi(line.substr(12));
  }
  return f;
}
std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(in, s);
  return s;
}
constexpr long kLargeKb = 16 * 1024;
}  // namespace

// Loads into new memory fill large buffers right after allocating them: the buffer comes
// populated and, where the kernel has transparent huge pages, eligible for them.
TEST(Tensor, LargeBuffersArePopulatedAndHugePageEligible) {
  Tensor t = Tensor::empty(DType::f32, {kLargeKb * 1024 / 4});
  const MappingFacts f = facts_of(t.bytes().data());
  EXPECT_GE(f.rss_kb, kLargeKb) << "untouched buffer not populated";
  const bool never = thp_mode().find("[never]") != std::string::npos;
  EXPECT_EQ(f.thp_eligible, never ? 0 : 1) << "THP mode: " << thp_mode();
}

TEST(TensorDeathTest, HugePageHintOffLeavesLargeBuffersUntouched) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("CKPT_MADVISE_HUGEPAGE", "0", 1);
        Tensor t = Tensor::empty(DType::f32, {kLargeKb * 1024 / 4});
        std::exit(facts_of(t.bytes().data()).rss_kb < 1024 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}
