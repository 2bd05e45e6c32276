#include <ckpt/dtype.hpp>
#include <ckpt/sdk.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/tensor.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

namespace {

template <class Out, class In>
std::vector<Out> cast_all(DType from, const std::vector<In>& in, DType to, size_t per_element_out = 1) {
  const size_t n = in.size() * sizeof(In) / itemsize(from);
  std::vector<Out> out(n * per_element_out);
  cast_elements(from, reinterpret_cast<const std::byte*>(in.data()), to, reinterpret_cast<std::byte*>(out.data()), n);
  return out;
}

// The code an 8-bit float format must give `x`: the nearest finite code, ties to the even
// one, by brute force over all 256 codes; `overflow` past `limit` (the midpoint between the
// largest finite value and the next power of the format's grid).
uint8_t nearest_code(float x, float (*decode)(uint8_t), double limit, uint8_t overflow) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const double a = std::fabs(static_cast<double>(x));
  if (a > limit) return sign | overflow;
  int best = -1;
  double best_d = INFINITY;
  for (int c = 0; c < 0x80; ++c) {
    const double v = decode(static_cast<uint8_t>(c));
    if (!std::isfinite(v)) continue;
    const double d = std::fabs(v - a);
    if (d < best_d || (d == best_d && (c & 1) == 0)) best = c, best_d = d;
  }
  return static_cast<uint8_t>(sign | best);
}

}  // namespace

TEST(DType, Float8DecodesAsTheOcpFormatsDefineThem) {
  // e4m3fn: bias 7, 3 mantissa bits, no infinities, S.1111.111 is NaN.
  EXPECT_EQ(f8_e4m3fn_to_f32(0x38), 1.0f);
  EXPECT_EQ(f8_e4m3fn_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f8_e4m3fn_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f8_e4m3fn_to_f32(0x78), 256.0f);  // exponent 15 is a normal exponent here
  EXPECT_TRUE(std::isnan(f8_e4m3fn_to_f32(0x7f)) && std::isnan(f8_e4m3fn_to_f32(0xff)));
  EXPECT_TRUE(std::signbit(f8_e4m3fn_to_f32(0x80)));
  // e5m2 is the top byte of an IEEE half.
  for (int c = 0; c < 256; ++c) {
    const float f = f8_e5m2_to_f32(static_cast<uint8_t>(c)), h = f16_to_f32(static_cast<uint16_t>(c << 8));
    EXPECT_TRUE(f == h || (std::isnan(f) && std::isnan(h))) << c;
  }
  EXPECT_EQ(f8_e5m2_to_f32(0x7b), 57344.0f);
  EXPECT_EQ(f8_e5m2_to_f32(0x7c), INFINITY);
}

TEST(DType, Float8RoundsToNearestEvenLikeABruteForceSearch) {
  for (int c = 0; c < 256; ++c) {
    const auto b = static_cast<uint8_t>(c);
    if (!std::isnan(f8_e4m3fn_to_f32(b))) {
      EXPECT_EQ(f32_to_f8_e4m3fn(f8_e4m3fn_to_f32(b)), b) << c;
    }
    if (!std::isnan(f8_e5m2_to_f32(b))) {
      EXPECT_EQ(f32_to_f8_e5m2(f8_e5m2_to_f32(b)), b) << c;
    }
  }
  uint64_t state = 42;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    // Magnitudes from below the smallest subnormal to past the largest finite value.
    const float x = std::ldexp(static_cast<float>(state >> 40) / 16777216.0f, static_cast<int>((state >> 8) % 40) - 24) *
                    ((state & 1) ? -1.0f : 1.0f);
    EXPECT_EQ(f32_to_f8_e4m3fn(x), nearest_code(x, f8_e4m3fn_to_f32, 464.0, 0x7f)) << x;
    EXPECT_EQ(f32_to_f8_e5m2(x), nearest_code(x, f8_e5m2_to_f32, 61440.0, 0x7c)) << x;
  }
  // Ties: 464 lies between 448 (even) and 480 (NaN's slot), so it rounds to 448; more is NaN.
  EXPECT_EQ(f32_to_f8_e4m3fn(464.0f), 0x7e);
  EXPECT_EQ(f32_to_f8_e4m3fn(465.0f), 0x7f);
  EXPECT_EQ(f32_to_f8_e4m3fn(-INFINITY), 0xff);
  EXPECT_EQ(f32_to_f8_e5m2(61440.0f), 0x7c);
  EXPECT_EQ(f32_to_f8_e5m2(-INFINITY), 0xfc);
  EXPECT_TRUE(std::isnan(f8_e5m2_to_f32(f32_to_f8_e5m2(NAN))));
}

TEST(DType, UnsignedCastsNeverPassThroughDouble) {
  const std::vector<uint64_t> u = {~uint64_t{0}, (uint64_t{1} << 53) + 1, 7};
  EXPECT_EQ(cast_all<int64_t>(DType::u64, u, DType::i64), (std::vector<int64_t>{INT64_MAX, (int64_t{1} << 53) + 1, 7}));
  EXPECT_EQ(cast_all<uint32_t>(DType::u64, u, DType::u32), (std::vector<uint32_t>{UINT32_MAX, UINT32_MAX, 7}));
  const std::vector<int64_t> neg = {-1, INT64_MAX};
  EXPECT_EQ(cast_all<uint64_t>(DType::i64, neg, DType::u64), (std::vector<uint64_t>{0, uint64_t{INT64_MAX}}));
  const std::vector<uint16_t> u16 = {65535, 0};
  EXPECT_EQ(cast_all<int32_t>(DType::u16, u16, DType::i32), (std::vector<int32_t>{65535, 0}));
  EXPECT_EQ(cast_all<double>(DType::u64, std::vector<uint64_t>{~uint64_t{0}}, DType::f64)[0], 18446744073709551616.0);
}

TEST(DType, ComplexCastsByComponent) {
  const std::vector<float> c64 = {1.5f, -2.0f, NAN, 0.25f};  // (1.5 - 2i), (nan + 0.25i)
  const auto c128 = cast_all<double>(DType::c64, c64, DType::c128, 2);
  EXPECT_EQ(c128[0], 1.5);
  EXPECT_EQ(c128[1], -2.0);
  EXPECT_TRUE(std::isnan(c128[2]));
  EXPECT_EQ(c128[3], 0.25);
  EXPECT_EQ(cast_all<double>(DType::c64, c64, DType::f64)[0], 1.5);  // the real part
  EXPECT_EQ(cast_all<float>(DType::f32, std::vector<float>{3.0f}, DType::c64, 2), (std::vector<float>{3.0f, 0.0f}));
  EXPECT_EQ(itemsize(DType::c128), 16u);
  EXPECT_EQ(component(DType::c64), DType::f32);
  EXPECT_TRUE(is_complex(DType::c128) && !is_floating(DType::c128) && is_floating(DType::f8_e5m2));
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

// ---- ggml's block dtypes ------------------------------------------------------------------------

// A q8_0 block made by hand: d = 0.5 (f16 0x3800), quants -16..15: the values are q * 0.5.
TEST(BlockDType, SizesShapesAndAHandMadeBlock) {
  EXPECT_TRUE(is_block(DType::q4_k));
  EXPECT_FALSE(is_block(DType::c128));
  EXPECT_EQ(block_elements(DType::q8_0), 32u);
  EXPECT_EQ(block_bytes(DType::q6_k), 210u);
  EXPECT_THROW(itemsize(DType::q4_0), UsageError);
  EXPECT_EQ(Tensor::empty(DType::q4_0, {3, 64}).nbytes(), 3u * 2 * 18);
  EXPECT_THROW(Tensor::empty(DType::q4_0, {3, 48}), UsageError);  // a row of one and a half blocks
  EXPECT_THROW(Tensor::empty(DType::q4_k, {}), UsageError);

  Tensor q = Tensor::empty(DType::q8_0, {1, 32});
  auto b = q.mutable_bytes();
  b[0] = std::byte{0x00};
  b[1] = std::byte{0x38};
  for (int j = 0; j < 32; ++j) b[2 + static_cast<size_t>(j)] = static_cast<std::byte>(static_cast<int8_t>(j - 16));
  std::vector<float> out(32);
  cast_elements(DType::q8_0, b.data(), DType::f32, reinterpret_cast<std::byte*>(out.data()), 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(out[static_cast<size_t>(j)], static_cast<float>(j - 16) * 0.5f) << j;
    EXPECT_EQ(element_as_double(DType::q8_0, b.data(), static_cast<size_t>(j)), (j - 16) * 0.5);
  }
}

// Quantizing and decoding again stays within each format's step: q8_0 within half a step of
// amax/127, q4_0 within a step of amax/8, q4_k within a step of its sub-block's range/15
// (plus the 6-bit rounding of its scales); values not a multiple of the block are refused.
TEST(BlockDType, QuantizingStaysWithinTheStep) {
  std::vector<float> x(512);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.37f) * 3.0f + (i % 7 == 0 ? -1.5f : 0.25f);
  const float amax = 4.75f;
  for (auto [q, bound] : {std::pair{DType::q8_0, amax / 127}, std::pair{DType::q4_0, amax / 8 * 1.01f},
                          std::pair{DType::q4_k, 9.5f / 15 * 1.2f}}) {
    SCOPED_TRACE(std::string(name(q)));
    std::vector<std::byte> blocks(storage_bytes(q, x.size()));
    cast_elements(DType::f32, reinterpret_cast<const std::byte*>(x.data()), q, blocks.data(), x.size());
    std::vector<float> back(x.size());
    cast_elements(q, blocks.data(), DType::f32, reinterpret_cast<std::byte*>(back.data()), x.size());
    float worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(back[i] - x[i]));
    EXPECT_LE(worst, bound);
    EXPECT_GT(worst, 0.f);
  }
  std::vector<std::byte> small(64);
  EXPECT_THROW(cast_elements(DType::f32, reinterpret_cast<const std::byte*>(x.data()), DType::q8_0, small.data(), 20), UsageError);
  x[3] = std::nanf("");
  EXPECT_THROW(cast_elements(DType::f32, reinterpret_cast<const std::byte*>(x.data()), DType::q8_0, small.data(), 32), UsageError);
  EXPECT_THROW(cast_elements(DType::f32, reinterpret_cast<const std::byte*>(x.data()), DType::q6_k, small.data(), 256), UsageError);
}

// A zero dimension must not hide a product past 2^62 in a block dtype's rows either: readers
// check every tensor with sdk::tensor_nbytes, and q4_0 [0, 2^63 - 32] was a 0-byte tensor whose
// row alone (5 * 10^18 bytes) overflows the strides a consumer computes.
TEST(BlockSizes, ZeroDimensionsDoNotHideOversizedRows) {
  auto code_of = [](std::vector<int64_t> shape, uint32_t dtype) {
    try {
      sdk::tensor_nbytes(shape, dtype, "t");
    } catch (const sdk::Error& e) {
      EXPECT_NE(std::string(e.what()).find("overflows"), std::string::npos) << e.what();
      return e.code();
    }
    return CKPT_OK;
  };
  EXPECT_EQ(code_of({0, INT64_MAX - 31}, CKPT_DTYPE_Q4_0), CKPT_ERR_LIMIT);
  EXPECT_EQ(code_of({INT64_MAX - 31}, CKPT_DTYPE_Q4_0), CKPT_ERR_LIMIT);
  EXPECT_EQ(code_of({0, int64_t{1} << 40, int64_t{1} << 32}, CKPT_DTYPE_Q4_0), CKPT_ERR_LIMIT);
  EXPECT_EQ(code_of({int64_t{1} << 62, 0}, CKPT_DTYPE_Q6_K), CKPT_OK);
  EXPECT_EQ(code_of({(int64_t{1} << 62) + 1, 0}, CKPT_DTYPE_Q6_K), CKPT_ERR_LIMIT);
  // Sizes within the bound are what they were.
  EXPECT_EQ(sdk::tensor_nbytes(std::vector<int64_t>{2, 64}, CKPT_DTYPE_Q4_0, "t"), 2u * 2 * 18);
  EXPECT_EQ(sdk::tensor_nbytes(std::vector<int64_t>{0, 256}, CKPT_DTYPE_Q6_K, "t"), 0u);
  EXPECT_EQ(sdk::tensor_nbytes(std::vector<int64_t>{3, 0}, CKPT_DTYPE_Q8_0, "t"), 0u);
  EXPECT_EQ(sdk::tensor_nbytes(std::vector<int64_t>{512}, CKPT_DTYPE_Q4_K, "t"), 2u * 144);
  // Core's own tensors agree.
  EXPECT_THROW(Tensor::zeros(DType::q4_0, {0, INT64_MAX - 31}), UsageError);
  EXPECT_EQ(Tensor::zeros(DType::q4_0, {0, 64}).nbytes(), 0u);
}

// storage_bytes is public: a count of a caller's own must not wrap to a small size.
TEST(BlockSizes, StorageBytesRefusesWhatOverflows) {
  EXPECT_EQ(storage_bytes(DType::f32, 3), 12u);
  EXPECT_EQ(storage_bytes(DType::q8_0, 64), 68u);
  EXPECT_THROW(storage_bytes(DType::f64, (uint64_t{1} << 61) + 1), UsageError);
  EXPECT_THROW(storage_bytes(DType::q8_0, UINT64_MAX / 32 * 32), UsageError);
}
