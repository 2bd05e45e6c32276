// Damaged files: truncated, with flipped bytes, or garbage. Reading one must end in a
// ckpt::Error or in a document; and when the document carries meta/integrity, verify must
// notice any change. A crash anywhere here is what AddressSanitizer in CI is for.
#include "kit.hpp"

#include <ckpt/integrity.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <set>

namespace ckpt::conformance {
namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spill(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// 0, small offsets (headers), evenly spread points, and one byte short.
std::vector<size_t> truncation_points(size_t size) {
  std::set<size_t> points;
  for (size_t p : {0, 1, 2, 3, 7, 8, 9, 16}) points.insert(p);
  for (size_t i = 1; i <= 7; ++i) points.insert(size * i / 8);
  if (size > 0) points.insert(size - 1);
  std::vector<size_t> out;
  for (size_t p : points)
    if (p < size) out.push_back(p);
  return out;
}

class Corruption : public FormatTest {
 protected:
  struct Outcome {
    std::optional<Document> doc;
    std::string error;
  };

  void SetUp() override {
    FormatTest::SetUp();
    if (!can(CKPT_CAP_WRITE) || !can(CKPT_CAP_READ)) return;
    Rng r = rng();
    original_ = representative(info(), r);
    fs::path p = file("original");
    write(original_, p);
    bytes_ = slurp(p);
    std::cout << "[ckpt-conformance] damaged copies go to " << dir().string()
              << "; after a crash the newest file there is the culprit\n";
  }

  // Opens, lists and reads every tensor by copy and, where the format maps, by map.
  Outcome attempt(const fs::path& p) {
    Outcome o;
    try {
      auto reader = format().open_reader(p, {});
      reader->tree();
      Document copied = reader->load(false);
      if (can(CKPT_CAP_MAP)) {
        Comparison c = compare(copied, reader->load(true));
        EXPECT_TRUE(c.equal()) << p.filename() << ": map() and read() disagree:" << c.report();
      }
      o.doc = std::move(copied);
    } catch (const Error& e) {
      o.error = e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << p.filename() << ": reading threw " << type_name(typeid(e)) << ", not a ckpt::Error: " << e.what();
      o.error = e.what();
    } catch (...) {
      ADD_FAILURE() << p.filename() << ": reading threw something that is not a std::exception";
      o.error = "?";
    }
    return o;
  }

  struct Tally {
    int refused = 0, unchanged = 0, detected = 0, unprotected = 0;
    std::string summary() const {
      return std::to_string(refused) + " refused, " + std::to_string(detected) + " read and caught by verify, " +
             std::to_string(unchanged) + " read unchanged, " + std::to_string(unprotected) +
             " read changed without hashes to check";
    }
  };

  // Reads a damaged copy and counts what happened. A changed document that still passes verify
  // fails the case; so does any changed document when `only_whole` (bytes cut off can drop
  // nothing a reader may do without, so it must have invented data or ignored a length).
  void judge(const fs::path& p, const std::string& damage, Tally& tally, bool only_whole = false) {
    Outcome o = attempt(p);
    if (!o.doc) {
      ++tally.refused;
      return;
    }
    Comparison c = compare(original_, *o.doc);
    if (c.equal()) {
      ++tally.unchanged;
      return;
    }
    if (only_whole) {
      ADD_FAILURE() << p.filename() << " (" << damage << ") was read as a different document:" << c.report();
      return;
    }
    if (!can_hold_integrity(info()) || !o.doc->find_group_path("meta/integrity")) {
      ++tally.unprotected;
      return;
    }
    if (verify_document(*o.doc).ok())
      ADD_FAILURE() << p.filename() << " (" << damage << ") reads as a different document that still passes verify:"
                    << c.report();
    else
      ++tally.detected;
  }

  Document original_;
  std::string bytes_;
};

TEST_P(Corruption, TruncatedFilesAreErrors) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  Tally tally;
  for (size_t at : truncation_points(bytes_.size())) {
    fs::path p = file("truncated_at_" + std::to_string(at));
    spill(p, bytes_.substr(0, at));
    judge(p, "truncated at " + std::to_string(at) + " of " + std::to_string(bytes_.size()) + " bytes", tally, true);
  }
  std::cout << "[ckpt-conformance] truncations: " << tally.summary() << "\n";
  // An empty file is among the truncations, and it is never a whole document.
  EXPECT_GT(tally.refused, 0) << "no truncation of a " << bytes_.size() << "-byte file was refused";
  RecordProperty("truncations_refused", tally.refused);
}

TEST_P(Corruption, FlippedBytesAreErrorsOrDetected) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  const int files = settings().quick ? 25 : 200;
  Rng r(mix_seed(settings().seed, "flips." + info().name));
  std::cout << "[ckpt-conformance] " << files << " files with flipped bytes, seed " << settings().seed
            << " (repeat with --seed " << settings().seed << ")\n";
  Tally tally;
  for (int i = 0; i < files; ++i) {
    std::string damaged = bytes_;
    std::string where;
    for (uint64_t k = 1 + r.below(4); k > 0; --k) {
      size_t at = r.below(damaged.size());
      damaged[at] = static_cast<char>(damaged[at] ^ static_cast<char>(1 + r.below(255)));
      where += (where.empty() ? "" : ", ") + std::to_string(at);
    }
    fs::path p = file("flipped_" + std::to_string(i));
    spill(p, damaged);
    judge(p, "bytes flipped at " + where, tally);
  }
  std::cout << "[ckpt-conformance] flips: " << tally.summary() << "\n";
  RecordProperty("flips_refused", tally.refused);
  RecordProperty("flips_detected", tally.detected);
}

// Files that merely start like this format: its magic followed by random bytes.
TEST_P(Corruption, MagicFollowedByGarbage) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  if (info().magic.empty()) GTEST_SKIP() << "format '" << info().name << "' declares no magic bytes";
  Rng r = rng();
  int refused = 0;
  for (const auto& m : info().magic) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{4096}}) {
      std::string bytes(m.offset + m.bytes.size() + len, '\0');
      r.fill(std::as_writable_bytes(std::span(bytes)));
      std::copy(m.bytes.begin(), m.bytes.end(), bytes.begin() + static_cast<std::ptrdiff_t>(m.offset));
      fs::path p = file("magic_then_" + std::to_string(len));
      spill(p, bytes);
      if (!attempt(p).doc) ++refused;
    }
  }
  EXPECT_GT(refused, 0) << "every file made of the magic and random bytes was accepted";
}

TEST_P(Corruption, GarbageFilesAreErrors) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  Rng r = rng();
  std::string random(4096, '\0');
  r.fill(std::as_writable_bytes(std::span(random)));
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty", ""}, {"zeros", std::string(4096, '\0')}, {"random", random}, {"text", "not a checkpoint\n"}};
  for (const auto& [what, bytes] : files) {
    fs::path p = file("garbage_" + what);
    spill(p, bytes);
    Outcome o = attempt(p);
    EXPECT_FALSE(o.doc.has_value()) << "a file of " << what << " bytes was read as a document";
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, Corruption, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(corruption)
