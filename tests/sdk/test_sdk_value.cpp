// ckpt/sdk_value.hpp: the owned attribute value every plugin that keeps a tree uses, its type
// names, and the strict UTF-8 check behind every format's text fields.
#include <ckpt/sdk_value.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using ckpt::sdk::Value;

namespace {

Value round_trip(const Value& v) {
  std::vector<ckpt_str> scratch;
  return Value::copy_of(v.view(scratch), "test value");
}

// Floats by their bits: the NaN payload and the sign of zero are part of the value.
std::vector<uint64_t> bits(const std::vector<double>& v) {
  std::vector<uint64_t> out;
  for (double d : v) out.push_back(std::bit_cast<uint64_t>(d));
  return out;
}

void expect_same(const Value& a, const Value& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.b, b.b);
  EXPECT_EQ(a.i, b.i);
  EXPECT_EQ(std::bit_cast<uint64_t>(a.f), std::bit_cast<uint64_t>(b.f));
  EXPECT_EQ(a.s, b.s);
  EXPECT_EQ(a.bools, b.bools);
  EXPECT_EQ(a.ints, b.ints);
  EXPECT_EQ(bits(a.floats), bits(b.floats));
  EXPECT_EQ(a.strings, b.strings);
}

}  // namespace

TEST(SdkValue, EveryTypeSurvivesViewAndCopy) {
  Value bools;
  bools.type = CKPT_VALUE_BOOL_ARRAY;
  bools.bools = {1, 0, 1};
  Value floats;
  floats.type = CKPT_VALUE_FLOAT64_ARRAY;
  floats.floats = {-0.0, std::numeric_limits<double>::infinity(), std::bit_cast<double>(0x7ff8000000000123ull)};
  const std::vector<Value> all = {Value::boolean(true), Value::integer(-(int64_t{1} << 62)), Value::floating(-0.0),
                                  Value::string(std::string("a\0b", 3)), bools, Value::int_array({1, -2, 3}),
                                  floats, Value::string_array({"", "é", std::string(1, '\0')})};
  for (const Value& v : all) {
    SCOPED_TRACE(ckpt::sdk::value_type_name(v.type));
    expect_same(round_trip(v), v);
  }
  const Value back = round_trip(floats);
  EXPECT_EQ(std::bit_cast<uint64_t>(back.floats[2]), 0x7ff8000000000123ull);
  EXPECT_TRUE(std::signbit(back.floats[0]));
  EXPECT_TRUE(std::signbit(round_trip(Value::floating(-0.0)).f));
}

TEST(SdkValue, UnknownTypeIsAnErrorNamingTheValue) {
  ckpt_value v{};
  v.type = 99;
  try {
    Value::copy_of(v, "attribute 'x' in group 'model'");
    FAIL() << "no error";
  } catch (const ckpt::sdk::Error& e) {
    EXPECT_EQ(e.code(), CKPT_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("attribute 'x' in group 'model' has unknown value type 99"), std::string::npos)
        << e.what();
  }
  std::vector<ckpt_str> scratch;
  EXPECT_THROW(Value().view(scratch), ckpt::sdk::Error);
}

TEST(SdkValue, TypeNamesGoBothWays) {
  for (uint32_t t = CKPT_VALUE_BOOL; t <= CKPT_VALUE_STRING_ARRAY; ++t) {
    ASSERT_NE(ckpt::sdk::value_type_name(t), nullptr) << t;
    EXPECT_EQ(ckpt::sdk::value_type_from_name(ckpt::sdk::value_type_name(t)), t);
  }
  EXPECT_STREQ(ckpt::sdk::value_type_name(CKPT_VALUE_STRING_ARRAY), "string[]");
  EXPECT_EQ(ckpt::sdk::value_type_name(0), nullptr);
  EXPECT_EQ(ckpt::sdk::value_type_from_name("int32"), 0u);
}

TEST(SdkValue, Utf8CheckIsStrictAndNamesTheFirstBadByte) {
  using ckpt::sdk::invalid_utf8_at;
  constexpr auto ok = std::string_view::npos;
  EXPECT_EQ(invalid_utf8_at(""), ok);
  EXPECT_EQ(invalid_utf8_at("plain ascii"), ok);
  EXPECT_EQ(invalid_utf8_at("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), ok);  // é € 😀
  EXPECT_EQ(invalid_utf8_at("\xf4\x8f\xbf\xbf"), ok);                       // U+10FFFF
  EXPECT_EQ(invalid_utf8_at("ab\xff"), 2u);
  EXPECT_EQ(invalid_utf8_at("a\xc0\x80"), 1u);          // overlong NUL
  EXPECT_EQ(invalid_utf8_at("\xe0\x80\xaf"), 0u);       // overlong '/'
  EXPECT_EQ(invalid_utf8_at("\xf0\x8f\xbf\xbf"), 0u);   // overlong U+FFFF
  EXPECT_EQ(invalid_utf8_at("xy\xed\xa0\x80"), 2u);     // a lone UTF-16 surrogate
  EXPECT_EQ(invalid_utf8_at("\xf4\x90\x80\x80"), 0u);   // past U+10FFFF
  EXPECT_EQ(invalid_utf8_at("ok\xe2\x82"), 2u);         // cut short
  EXPECT_EQ(invalid_utf8_at("\xc3\xa9\x80"), 2u);       // a stray continuation byte
  EXPECT_TRUE(ckpt::sdk::valid_utf8("\xc3\xa9"));
  EXPECT_FALSE(ckpt::sdk::valid_utf8("\xc3"));
}
