// identify() decides which plugin reads a file whose extension is missing or wrong: it must
// claim the format's own output and nothing else. Heads are handed over in buffers of exactly
// their length, so reading past `len` is caught by AddressSanitizer.
#include "kit.hpp"

#include <fstream>
#include <iterator>

namespace ckpt::conformance {
namespace {

std::vector<uint8_t> bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> with_zeros(std::vector<uint8_t> head, size_t size) {
  head.resize(size, 0);
  return head;
}

struct Sample {
  std::string what;
  std::vector<uint8_t> head;
  uint64_t file_size;
};

std::vector<Sample> garbage(Rng& r) {
  std::vector<uint8_t> random(4096);
  r.fill(std::as_writable_bytes(std::span(random)));
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                    0,    0,   0,   1,   0,    0,    0,    1,    8, 6, 0, 0,  0,   0x1f, 0x15, 0xc4, 0x89};
  return {
      {"an empty file", {}, 0},
      {"4096 zero bytes", std::vector<uint8_t>(4096, 0), 4096},
      {"zero bytes of a large file", std::vector<uint8_t>(4096, 0), uint64_t{1} << 30},
      {"4096 random bytes", random, 4096},
      {"a single random byte", {random[0]}, 1},
      {"a PNG header", png, png.size()},
      {"a gzip header", with_zeros({0x1f, 0x8b, 0x08, 0x00}, 64), 64},
      {"a ZIP local header", with_zeros({'P', 'K', 0x03, 0x04, 0x14, 0x00}, 128), 128},
      {"an HDF5 signature", with_zeros({0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'}, 512), 512},
      {"an ELF header", with_zeros({0x7f, 'E', 'L', 'F', 2, 1, 1}, 64), 64},
      {"plain text", {'h', 'e', 'l', 'l', 'o', ',', ' ', 'w', 'o', 'r', 'l', 'd', '\n'}, 13},
  };
}

class Identify : public FormatTest {
 protected:
  int score(const std::vector<uint8_t>& head, uint64_t file_size) {
    // A copy of exactly head.size() bytes, so an overread touches the redzone.
    auto exact = std::make_unique<uint8_t[]>(head.size());
    std::copy(head.begin(), head.end(), exact.get());
    return format().identify({exact.get(), head.size()}, file_size);
  }
};

TEST_P(Identify, ClaimsItsOwnOutput) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  Rng r = rng();
  std::vector<std::pair<std::string, Document>> docs;
  docs.emplace_back("the representative document", representative(info(), r));
  docs.emplace_back("an empty document", Document());
  for (const auto& [what, doc] : docs) {
    SCOPED_TRACE(what);
    fs::path p = file("identify");
    write(doc, p);
    auto all = bytes_of(p);
    std::vector<uint8_t> head(all.begin(), all.begin() + std::min<size_t>(all.size(), 4096));
    EXPECT_GT(score(head, all.size()), 0) << "identify() does not recognise the format's own output";
    EXPECT_TRUE(info().magic.empty() || info().magic_matches(head))
        << "none of the declared magic bytes match the format's own output, so the registry never asks identify()";
  }
}

TEST_P(Identify, RejectsGarbage) {
  Rng r = rng();
  for (const auto& s : garbage(r)) {
    // A sample that starts with this format's own magic is not garbage to it.
    if (!info().magic.empty() && info().magic_matches(s.head)) continue;
    EXPECT_EQ(score(s.head, s.file_size), 0) << "identify() claims " << s.what;
  }
}

TEST_P(Identify, ScoresStayInRangeOnEveryShortHead) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  Rng r = rng();
  fs::path p = file("short_heads");
  write(representative(info(), r), p);
  auto all = bytes_of(p);
  for (size_t n = 0; n <= std::min<size_t>(all.size(), 80); ++n) {
    std::vector<uint8_t> head(all.begin(), all.begin() + n);
    int s = score(head, all.size());
    EXPECT_TRUE(s >= 0 && s <= 100) << "identify() scored " << s << " on the first " << n << " bytes";
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, Identify, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(identify)
