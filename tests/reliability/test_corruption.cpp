// Corruption: one random byte of a checkpoint changed, many times, for every writable format:
// `ckpt verify` must report every change to tensor data or metadata, and a load with
// verification on must refuse or return exactly the original, never crash or return other
// data. CI runs a few hundred flips; ckpt_corruption_stats runs the 1000 of the figures.
#include "flips.hpp"

#include <ckpt/integrity.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <random>

using namespace ckpt;
using namespace ckpt::reliability;

namespace {

class Corruption : public ::testing::TestWithParam<std::string> {};

std::string summary(const FlipStats& s) {
  char line[512];
  std::snprintf(line, sizeof line,
                "%s (%llu-byte file%s): %llu flips, %llu detected, %llu harmless, %llu missed; verified load: "
                "%llu refused, %llu identical, %llu wrong",
                s.format.c_str(), static_cast<unsigned long long>(s.file_bytes),
                s.has_integrity ? "" : ", no hashes in this format", static_cast<unsigned long long>(s.flips),
                static_cast<unsigned long long>(s.detected), static_cast<unsigned long long>(s.harmless),
                static_cast<unsigned long long>(s.missed), static_cast<unsigned long long>(s.load_refused),
                static_cast<unsigned long long>(s.load_identical), static_cast<unsigned long long>(s.load_wrong));
  std::string out = line;
  for (const auto& e : s.examples) out += "\n  " + e;
  return out;
}

TEST_P(Corruption, VerifyReportsEveryFlipThatChangesTheContent) {
  TempDir tmp("flip-" + param_name(GetParam()));
  FlipOptions o;
  o.flips = env_u64("CKPT_RELIABILITY_FLIPS", 150);
  o.seed = env_u64("CKPT_RELIABILITY_SEED", std::random_device{}());
  o.tensor_bytes = 4 << 10;
  FlipStats s = run_flips(GetParam(), tmp.path, o);
  std::printf("[flips] seed %llu: %s\n", static_cast<unsigned long long>(o.seed), summary(s).c_str());
  EXPECT_EQ(s.not_ckpt_error, 0u) << summary(s);
  if (s.has_integrity) {
    EXPECT_EQ(s.missed, 0u) << summary(s);
    EXPECT_EQ(s.load_wrong, 0u) << summary(s);
  }
  EXPECT_EQ(s.detected + s.harmless + s.missed + s.not_ckpt_error, s.flips) << summary(s);
}

// The same through the real program, for a handful of flips: exit 1 (or 2 for a file that is
// no longer in any format) exactly when the library reports the flip.
TEST_P(Corruption, CkptVerifyExitCodeAgreesWithTheLibrary) {
  TempDir tmp("flipcli-" + param_name(GetParam()));
  FlipOptions o;
  o.flips = 12;
  o.seed = env_u64("CKPT_RELIABILITY_SEED", std::random_device{}());
  o.tensor_bytes = 4 << 10;
  o.cli = CKPT_CLI;
  FlipStats s = run_flips(GetParam(), tmp.path, o);
  EXPECT_EQ(s.cli_disagreed, 0u) << summary(s);
}

// One flipped byte in the name "meta" or "integrity" hides the hashes under another path; that
// is damage to report, not a file without hashes to wave through.
TEST(DamagedNames, HashesUnderAnotherNameAreReported) {
  Sample s = make_sample(Registry::global().get("json").info(), 1024, 1);
  ASSERT_TRUE(s.has_integrity);
  auto renamed = [](const Group& from, Group& parent, const std::string& old_name, const std::string& new_name) {
    parent.add_group(new_name) = *from.find_group(old_name);
    parent.erase(old_name);
  };
  Document meta_renamed = s.doc;
  renamed(s.doc, meta_renamed, "meta", "mexa");
  VerifyReport r = verify_document(meta_renamed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.problems[0].find("mexa/integrity: a record of hashes outside meta/integrity"), std::string::npos) << r.problems[0];

  Document integrity_renamed = s.doc;
  renamed(*s.doc.find_group("meta"), integrity_renamed.group("meta"), "integrity", "integrjty");
  r = verify_document(integrity_renamed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.problems[0].find("meta/integrjty"), std::string::npos) << r.problems[0];

  Document integrity_removed = s.doc;
  integrity_removed.group("meta").erase("integrity");
  r = verify_document(integrity_removed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.problems[0].find("meta/integrity: missing"), std::string::npos) << r.problems[0];

  // A document ckpt did not write as a checkpoint has nothing to check, and says so.
  Document foreign;
  foreign.add_tensor("w", Tensor::from<float>(DType::f32, {1}, {1}));
  r = verify_document(foreign);
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.has_integrity);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, Corruption, ::testing::ValuesIn(writable_formats()),
                         [](const auto& info) { return param_name(info.param); });

}  // namespace
