// Whatever a format declares it holds must come back bit for bit.
#include "kit.hpp"

#include <ckpt/dtype.hpp>

namespace ckpt::conformance {
namespace {

class RoundTrip : public FormatTest {
  bool writes_files() const override { return true; }
};
class DtypeRoundTrip : public DtypeTest {
  bool writes_files() const override { return true; }
};

#define CKPT_REQUIRE_DTYPE()                                                                  \
  do {                                                                                        \
    if (!info().holds(dtype()))                                                               \
      GTEST_SKIP() << "format '" << info().name << "' does not declare dtype " << name(dtype()); \
  } while (0)

// ---- tensors ----------------------------------------------------------------------------------

TEST_P(DtypeRoundTrip, RandomBitsInEveryShape) {
  CKPT_REQUIRE_DTYPE();
  Rng r = rng();
  Document d;
  const std::vector<Shape> shapes = {{1}, {37}, {3, 5, 7}, {2, 1, 3, 1, 2, 1, 2}, {1, 1, 1}};
  for (size_t i = 0; i < shapes.size(); ++i) d.add_tensor("t" + std::to_string(i), random_tensor(dtype(), shapes[i], r));
  expect_round_trip(d, "dtype");
}

TEST_P(DtypeRoundTrip, ZeroDimensionalTensor) {
  CKPT_REQUIRE_DTYPE();
  Rng r = rng();
  Document d;
  d.add_tensor("scalar", random_tensor(dtype(), {}, r));
  d.add_tensor("another", random_tensor(dtype(), {}, r));
  expect_round_trip(d, "scalar");
}

TEST_P(DtypeRoundTrip, EmptyTensors) {
  CKPT_REQUIRE_DTYPE();
  Rng r = rng();
  Document d;
  d.add_tensor("zero", random_tensor(dtype(), {0}, r));
  d.add_tensor("middle_zero", random_tensor(dtype(), {3, 0, 2}, r));
  d.add_tensor("all_zero", random_tensor(dtype(), {0, 0}, r));
  d.add_tensor("after", random_tensor(dtype(), {2}, r));
  expect_round_trip(d, "empty");
}

// A format handed a dtype it does not declare must refuse it, or keep it exactly; never store
// something else under the same name.
TEST_P(DtypeRoundTrip, UndeclaredDtypeIsRefusedOrKept) {
  if (info().holds(dtype())) GTEST_SKIP() << "dtype " << name(dtype()) << " is declared; the other cases cover it";
  Rng r = rng();
  Document d;
  d.add_tensor("t", random_tensor(dtype(), {5}, r));
  fs::path p = file("undeclared");
  try {
    write(d, p);
  } catch (const Error& e) {
    SUCCEED() << "refused: " << e.what();
    return;
  }
  Document back;
  ASSERT_NO_THROW(back = read(p));
  Comparison c = compare(d, back);
  EXPECT_TRUE(c.equal()) << "dtype " << name(dtype()) << " is not declared, was accepted, and changed:" << c.report();
}

TEST_P(RoundTrip, TensorOf64MiB) {
  CKPT_SKIP_IN_QUICK_MODE();
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  DType t = info().holds(DType::f32) ? DType::f32 : dtypes.front();
  // One element past 64 MiB, so no power-of-two size limit hides in the case.
  int64_t n = (int64_t{64} << 20) / static_cast<int64_t>(itemsize(t)) + 1;
  Rng r = rng();
  Document d;
  d.add_tensor("big", random_tensor(t, {n}, r));
  d.add_tensor("after_big", random_tensor(t, {3}, r));
  expect_round_trip(d, "big");
}

TEST_P(RoundTrip, ThousandSmallTensors) {
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  Rng r = rng();
  Document d;
  for (int i = 0; i < 1000; ++i) {
    char n[32];
    std::snprintf(n, sizeof n, "layer%03d.w", (i * 7919) % 1000);  // not in name order
    d.add_tensor(n, random_tensor(dtypes[i % dtypes.size()], {i % 5, 2}, r));
  }
  expect_round_trip(d, "many");
}

// ---- names and structure ----------------------------------------------------------------------

TEST_P(RoundTrip, EmptyDocument) { expect_round_trip(Document(), "empty_doc"); }

TEST_P(RoundTrip, EmptyGroups) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_NESTED_GROUPS);
  Document d;
  d.add_group("empty");
  d.group("outer").add_group("inner_empty");
  d.group("outer").group("deeper").add_group("leaf");
  expect_round_trip(d, "empty_groups");
}

TEST_P(RoundTrip, UnicodeNames) {
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  Rng r = rng();
  Document d;
  for (const auto& n : unicode_names()) {
    d.add_tensor(n, random_tensor(dtypes.front(), {2}, r));
    if (can(CKPT_CAP_ATTRIBUTES)) d.set(n, n);
    if (can(CKPT_CAP_NESTED_GROUPS)) d.group("group_" + n).add_tensor(n, random_tensor(dtypes.back(), {1}, r));
  }
  expect_round_trip(d, "unicode");
}

TEST_P(RoundTrip, NamesThatLookLikeFormatKeys) {
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  Rng r = rng();
  Document d;
  for (const auto& n : key_like_names()) {
    d.add_tensor(n, random_tensor(dtypes.front(), {2}, r));
    if (can(CKPT_CAP_ATTRIBUTES)) d.set(n, int64_t{7});
  }
  if (can(CKPT_CAP_NESTED_GROUPS)) {
    Group& g = d.add_group("group");
    for (const auto& n : key_like_names()) g.add_group(n).add_tensor(n, random_tensor(dtypes.back(), {1}, r));
  }
  expect_round_trip(d, "keys");
}

// Attributes and members are separate namespaces in the document model.
TEST_P(RoundTrip, AttributeAndMemberShareAName) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  Rng r = rng();
  Document d;
  d.set("weight", "an attribute");
  d.add_tensor("weight", random_tensor(dtypes.front(), {2}, r));
  if (can(CKPT_CAP_NESTED_GROUPS)) {
    d.set("block", int64_t{3});
    d.group("block").set("block", 1.5).add_tensor("x", random_tensor(dtypes.front(), {1}, r));
  }
  expect_round_trip(d, "shared_name");
}

TEST_P(RoundTrip, LongNames) {
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  Rng r = rng();
  const std::string ascii(200, 'n');
  std::string wide;
  for (int i = 0; i < 200; ++i) wide += "\xc3\xa4";  // 200 characters, 400 bytes
  Document d;
  d.add_tensor(ascii, random_tensor(dtypes.front(), {3}, r));
  d.add_tensor(wide, random_tensor(dtypes.front(), {3}, r));
  if (can(CKPT_CAP_ATTRIBUTES)) d.set(ascii, ascii).set(wide, wide);
  if (can(CKPT_CAP_NESTED_GROUPS))
    d.group(std::string(200, 'g')).group(wide).add_tensor(ascii, random_tensor(dtypes.back(), {1}, r));
  expect_round_trip(d, "long_names");
}

TEST_P(RoundTrip, DeepNesting) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_NESTED_GROUPS);
  auto dtypes = held_dtypes(info());
  if (dtypes.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no dtypes";
  Rng r = rng();
  Document d;
  Group* g = &d;
  for (int depth = 1; depth <= 40; ++depth) {
    g = &g->add_group("level" + std::to_string(depth));
    if (can(CKPT_CAP_ATTRIBUTES)) g->set("depth", int64_t{depth});
    if (depth % 8 == 0) g->add_tensor("t", random_tensor(dtypes[depth % dtypes.size()], {2}, r));
  }
  g->add_tensor("bottom", random_tensor(dtypes.front(), {2, 2}, r));
  expect_round_trip(d, "deep");
}

// ---- attributes -------------------------------------------------------------------------------

void add_every_scalar(Group& g) {
  g.set("bool_true", true).set("bool_false", false);
  g.set("int_zero", int64_t{0}).set("int_negative", int64_t{-42}).set("int_big", int64_t{1} << 40);
  g.set("float_half", 0.5).set("float_tenth", 0.1).set("float_negative", -2.25);
  g.set("string", "text").set("string_empty", "");
}

void add_every_array(Group& g) {
  g.set("bools", std::vector<bool>{true, false, true, true});
  g.set("ints", std::vector<int64_t>{1, -2, 3, int64_t{1} << 50});
  g.set("floats", std::vector<double>{0.5, -0.25, 1e-10, 3e200});
  g.set("strings", std::vector<std::string>{"a", "", "b c", "\xc3\xa4"});
  g.set("one_bool", std::vector<bool>{false});
  g.set("one_int", std::vector<int64_t>{7});
  g.set("one_float", std::vector<double>{2.0});
  g.set("one_string", std::vector<std::string>{"only"});
}

TEST_P(RoundTrip, AttributesOfEveryScalarType) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  Document d;
  add_every_scalar(d);
  if (can(CKPT_CAP_NESTED_GROUPS)) add_every_scalar(d.group("nested").group("deeper"));
  expect_round_trip(d, "scalars");
}

TEST_P(RoundTrip, AttributesOfEveryArrayType) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTE_ARRAYS);
  Document d;
  add_every_array(d);
  if (can(CKPT_CAP_NESTED_GROUPS)) add_every_array(d.group("nested").group("deeper"));
  expect_round_trip(d, "arrays");
}

// The type of an empty array is all there is to keep.
TEST_P(RoundTrip, EmptyArraysKeepTheirType) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTE_ARRAYS);
  Document d;
  d.set("bools", std::vector<bool>{});
  d.set("ints", std::vector<int64_t>{});
  d.set("floats", std::vector<double>{});
  d.set("strings", std::vector<std::string>{});
  d.set("one_empty_string", std::vector<std::string>{""});
  expect_round_trip(d, "empty_arrays");
}

TEST_P(RoundTrip, AwkwardStrings) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  Document d;
  auto strings = awkward_strings();
  for (size_t i = 0; i < strings.size(); ++i) d.set("s" + std::to_string(i), strings[i]);
  if (can(CKPT_CAP_ATTRIBUTE_ARRAYS)) d.set("all", strings);
  expect_round_trip(d, "strings");
}

TEST_P(RoundTrip, Int64Extremes) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  Document d;
  auto ints = int64_extremes();
  for (size_t i = 0; i < ints.size(); ++i) d.set("i" + std::to_string(i), ints[i]);
  if (can(CKPT_CAP_ATTRIBUTE_ARRAYS)) d.set("all", ints);
  expect_round_trip(d, "int64");
}

TEST_P(RoundTrip, SpecialDoubles) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  Document d;
  auto doubles = special_doubles();
  for (size_t i = 0; i < doubles.size(); ++i) d.set("d" + std::to_string(i), doubles[i]);
  if (can(CKPT_CAP_ATTRIBUTE_ARRAYS)) d.set("all", doubles);
  expect_round_trip(d, "doubles");
}

// Kept apart from SpecialDoubles so a format that canonicalises NaNs fails only here.
TEST_P(RoundTrip, NanPayloadsAndSigns) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_ATTRIBUTES);
  Document d;
  auto nans = nan_payloads();
  for (size_t i = 0; i < nans.size(); ++i) d.set("nan" + std::to_string(i), nans[i]);
  if (can(CKPT_CAP_ATTRIBUTE_ARRAYS)) d.set("all", nans);
  expect_round_trip(d, "nans");
}

TEST_P(RoundTrip, RepresentativeDocument) {
  Rng r = rng();
  expect_round_trip(representative(info(), r), "representative");
}

INSTANTIATE_TEST_SUITE_P(Conformance, RoundTrip, ::testing::ValuesIn(subjects()), subject_param_name);
INSTANTIATE_TEST_SUITE_P(Conformance, DtypeRoundTrip,
                         ::testing::Combine(::testing::ValuesIn(subjects()), ::testing::ValuesIn(all_dtypes())),
                         dtype_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(roundtrip)
