// Paths that cannot be written or read, unknown options and abandoned writers end in a
// ckpt::Error (or, for the writer, in nothing at all), never in a crash or a stray file.
#include "kit.hpp"

namespace ckpt::conformance {
namespace {

class Errors : public FormatTest {
 protected:
  Document small() {
    Rng r = rng();
    Document d;
    auto dtypes = held_dtypes(info());
    if (!dtypes.empty()) d.add_tensor("t", random_tensor(dtypes.front(), {3}, r));
    if (can(CKPT_CAP_ATTRIBUTES)) d.set("a", int64_t{1});
    return d;
  }
  std::string ext() const { return file("x").extension().string(); }
};

// Tests run as root, whom permissions do not stop; /proc refuses new files even to root.
TEST_P(Errors, UnwritablePathsAreErrors) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  fs::create_directory(dir() / ("a_directory" + ext()));
  const std::vector<fs::path> targets = {
      dir() / "no_such_folder" / ("x" + ext()),
      fs::path("/proc") / ("ckpt-conformance" + ext()),
      fs::path("/proc/ckpt-conformance-no-such-folder") / ("x" + ext()),
      dir() / ("a_directory" + ext()),
  };
  Document d = small();
  for (const auto& t : targets) {
    SCOPED_TRACE(t.string());
    // Through the host's atomic save, which the plugin sees as a temporary beside the target.
    error_from([&] { write(d, t); });
    // And the plugin alone, given the path itself.
    error_from([&] {
      auto w = format().open_writer(t, {});
      w->write(d);
    });
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir())) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"a_directory" + ext()}) << "a failed write left files behind";
}

TEST_P(Errors, UnreadablePathsAreErrors) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  fs::create_directory(dir() / ("a_directory" + ext()));
  for (const auto& p : {file("does_not_exist"), dir() / ("a_directory" + ext())}) {
    SCOPED_TRACE(p.string());
    error_from([&] { format().open_reader(p, {})->load(false); });
  }
}

TEST_P(Errors, UnknownWriterOptionIsAUsageErrorNamingIt) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  const std::string key = "ckpt_conformance_no_such_option";
  fs::path p = file("options");
  auto msg = error_from<UsageError>([&] { write(small(), p, {{key, "1"}}); });
  if (msg) {
    EXPECT_NE(msg->find(key), std::string::npos) << "the error does not name the option: " << *msg;
  }
  EXPECT_FALSE(fs::exists(p));
}

TEST_P(Errors, UnknownReaderOptionIsAUsageErrorNamingIt) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_READ);
  const std::string key = "ckpt_conformance_no_such_option";
  fs::path p = file("options");
  write(small(), p);
  auto msg = error_from<UsageError>([&] { format().open_reader(p, {{key, "1"}})->load(false); });
  if (msg) {
    EXPECT_NE(msg->find(key), std::string::npos) << "the error does not name the option: " << *msg;
  }
}

// The host destroys a writer without finish() when anything fails half way; the plugin must
// free everything (LeakSanitizer checks at exit) and let go of the file.
TEST_P(Errors, AbandonedWriterCleansUp) {
  CKPT_REQUIRE_CAPABILITY(CKPT_CAP_WRITE);
  fs::path p = file("abandoned");
  Rng r = rng();
  auto dtypes = held_dtypes(info());
  {
    auto w = format().open_writer(p, {});
    // Announces one child more than it gives: the writer is abandoned in the middle.
    EXPECT_NO_THROW(w->begin_group("", can(CKPT_CAP_ATTRIBUTES) ? 1 : 0, dtypes.empty() ? 1 : 2));
    if (can(CKPT_CAP_ATTRIBUTES)) {
      EXPECT_NO_THROW(w->attribute("a", Value(int64_t{1})));
    }
    if (!dtypes.empty()) {
      Tensor t = random_tensor(dtypes.front(), {4}, r);
      EXPECT_NO_THROW(w->tensor("t", t.dtype(), t.shape(), t.bytes()));
    }
  }
  // The same path is writable again and gives a whole file.
  Document d = small();
  ASSERT_NO_THROW(write(d, p));
  if (can(CKPT_CAP_READ)) {
    Comparison c = compare(d, read(p));
    EXPECT_TRUE(c.equal()) << c.report();
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, Errors, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(errors)
