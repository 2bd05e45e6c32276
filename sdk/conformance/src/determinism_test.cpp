// A format that declares 'deterministic' promises that the same document gives the same bytes:
// no timestamps, no addresses, no hash-map order, no uninitialised padding.
#include "kit.hpp"

#include <fstream>
#include <iterator>

namespace ckpt::conformance {
namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A deep copy whose tensors live in other buffers, so equal bytes cannot come from equal
// pointers.
Document deep_copy(const Group& g) {
  Document out;
  for (const auto& a : g.attributes()) out.set(a.name, a.value);
  for (const auto& c : g.children()) {
    if (c.is_tensor())
      out.add_tensor(c.name, c.tensor().clone());
    else
      out.add_group(c.name) = deep_copy(c.group());
  }
  return out;
}

size_t first_difference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

class Determinism : public FormatTest {};

TEST_P(Determinism, SameDocumentSameBytes) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_DETERMINISTIC);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  Rng r = rng();
  Document d = representative(info(), r);
  write(d, file("first"));
  write(d, file("second"));
  write(deep_copy(d), file("copy"));
  const std::string first = slurp(file("first"));
  for (const char* other : {"second", "copy"}) {
    const std::string bytes = slurp(file(other));
    EXPECT_TRUE(bytes == first) << "writing the document again (" << other << ") gave other bytes: sizes "
                                << first.size() << " and " << bytes.size() << ", first difference at offset "
                                << first_difference(first, bytes);
  }
}

// What was read is the same document, so writing it again gives the same bytes; only when the
// reader kept the order, since another order is another document.
TEST_P(Determinism, RewritingWhatWasReadGivesTheSameBytes) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_DETERMINISTIC);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  Rng r = rng();
  Document d = representative(info(), r);
  write(d, file("first"));
  Document back = read(file("first"));
  Comparison c = compare(d, back);
  ASSERT_TRUE(c.equal()) << c.report();
  if (c.reordered) GTEST_SKIP() << "the reader lists members in another order than they were written";
  write(back, file("rewritten"));
  const std::string a = slurp(file("first"));
  const std::string b = slurp(file("rewritten"));
  EXPECT_TRUE(a == b) << "sizes " << a.size() << " and " << b.size() << ", first difference at offset "
                      << first_difference(a, b);
}

INSTANTIATE_TEST_SUITE_P(Conformance, Determinism, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(determinism)
