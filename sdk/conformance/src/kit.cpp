#include "kit.hpp"

#include <cxxabi.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <iostream>

namespace ckpt::conformance {

// Cases register themselves from static initialisers, and a static library contributes an
// object file only when something refers to it. Every program using the kit calls configure()
// (run() does too), so it is configure() that refers to every case file: otherwise a program
// of a plugin author's own calling configure() would run none of the kit's cases, and pass.
namespace anchors {
void corruption();
void declaration();
void determinism();
void errors();
void identify();
void map();
void roundtrip();
void slice();
}  // namespace anchors

namespace {
Settings g_settings;
std::vector<Subject> g_subjects;
}  // namespace

void configure(const Settings& s) {
  anchors::corruption();
  anchors::declaration();
  anchors::determinism();
  anchors::errors();
  anchors::identify();
  anchors::map();
  anchors::roundtrip();
  anchors::slice();
  auto plugin = Registry::load_library_info(s.library);
  std::vector<Subject> chosen;
  for (size_t i = 0; i < plugin->formats.size(); ++i) {
    const std::string& n = plugin->formats[i].name;
    bool wanted = s.formats.empty();
    for (const auto& f : s.formats) wanted = wanted || f == n;
    if (wanted) chosen.push_back({n, plugin, i});
  }
  for (const auto& f : s.formats) {
    bool found = false;
    for (const auto& c : chosen) found = found || c.name == f;
    if (!found) {
      std::string known;
      for (const auto& x : plugin->formats) known += (known.empty() ? "" : ", ") + x.name;
      throw UsageError("'" + s.library.string() + "' has no format '" + f + "' (it has: " +
                       (known.empty() ? "none" : known) + ")");
    }
  }
  if (chosen.empty()) throw PluginError("'" + s.library.string() + "' declares no formats");
  g_settings = s;
  g_subjects = std::move(chosen);
}

const Settings& settings() { return g_settings; }
const std::vector<Subject>& subjects() { return g_subjects; }

void PrintTo(const Subject& s, std::ostream* os) { *os << s.name; }

std::string capability_name(uint32_t cap) {
  auto names = capability_names(cap);
  return names.empty() ? "capability " + std::to_string(cap) : names.front();
}

std::string type_name(const std::type_info& t) {
  int status = 0;
  char* d = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : t.name();
  std::free(d);
  return s;
}

namespace {
// gtest accepts only letters, digits and '_' in a parameter's name.
std::string identifier(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}
}  // namespace

std::string subject_param_name(const ::testing::TestParamInfo<Subject>& info) { return identifier(info.param.name); }

std::string dtype_param_name(const ::testing::TestParamInfo<std::tuple<Subject, DType>>& info) {
  return identifier(std::get<0>(info.param).name) + "_" + std::string(name(std::get<1>(info.param)));
}

std::vector<DType> all_dtypes() {
  std::vector<DType> out;
  for (int d = static_cast<int>(kFirstDType); d <= static_cast<int>(kLastDType); ++d)
    out.push_back(static_cast<DType>(d));
  return out;
}

// ---- the fixture ------------------------------------------------------------------------------

void FormatTestBase::SetUp() {
  static std::atomic<int> counter{0};
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string stem = identifier(std::string(t->test_suite_name()) + "-" + t->name());
  dir_ = fs::temp_directory_path() /
         ("ckpt-conformance-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + stem);
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  format_.emplace(subject().format());
  if (writes_files() && !can(CKPT_CAP_WRITE))
    GTEST_SKIP() << "format '" << info().name << "' does not declare capability 'write'; this suite reads what it wrote";
}

void FormatTestBase::TearDown() {
  format_.reset();
  if (HasFailure()) {
    std::cout << "[ckpt-conformance] files of the failed case are kept in " << dir_.string() << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

Rng FormatTestBase::rng(std::string_view salt) const {
  const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  return Rng(mix_seed(settings().seed, std::string(t->test_suite_name()) + "." + t->name() + "." + std::string(salt)));
}

fs::path FormatTestBase::file(const std::string& stem) const {
  const auto& exts = info().extensions;
  return dir_ / (stem + (exts.empty() ? std::string(".bin") : exts.front()));
}

void FormatTestBase::write(const Document& doc, const fs::path& path, const Options& options) const {
  SaveOptions save;
  save.format_options = options;
  write_document(doc, path, format(), save);
}

Document FormatTestBase::read(const fs::path& path) const {
  auto reader = format().open_reader(path, {});
  return reader->load(false);
}

void FormatTestBase::expect_round_trip(const Document& doc, const std::string& stem) const {
  fs::path p = file(stem);
  ASSERT_NO_THROW(write(doc, p)) << "writing " << p;
  Document back;
  ASSERT_NO_THROW(back = read(p)) << "reading " << p;
  Comparison c = compare(doc, back);
  EXPECT_TRUE(c.equal()) << "read back from " << p.filename() << " differs:" << c.report();
  if (can(CKPT_CAP_MAP)) {
    Document mapped;
    ASSERT_NO_THROW(mapped = format().open_reader(p, {})->load(true)) << "reading " << p << " with map";
    Comparison m = compare(doc, mapped);
    EXPECT_TRUE(m.equal()) << "read back through map() from " << p.filename() << " differs:" << m.report();
  }
}

}  // namespace ckpt::conformance
