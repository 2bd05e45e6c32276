// The SDK as its users get it: `cmake --install` of this build into a scratch prefix, then the
// two examples and a plugin author's own kit program (kit_consumer/) built from that prefix
// alone with find_package(ckpt), and the installed programs run on what they produce. The cases
// run in order and share the prefix and builds.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

const fs::path kSource = CKPT_SOURCE_DIR;
const fs::path kScratch = CKPT_SCRATCH_DIR;
const fs::path kPrefix = kScratch / "prefix";
const fs::path kHelloBuild = kScratch / "hello";
const fs::path kAppBuild = kScratch / "train_loop";
const fs::path kKitBuild = kScratch / "kit_consumer";
const fs::path kWork = kScratch / "work";
const fs::path kCkpt = kPrefix / "bin/ckpt";

struct Result {
  int code;
  std::string out;
};

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// Runs a shell command line with the environment of an ordinary shell: no LD_LIBRARY_PATH (the
// installed programs must find libckpt by themselves) and no CKPT_PLUGIN_PATH unless given.
Result run(const std::string& command, const std::string& plugin_path = "") {
  std::string env = "env -u LD_LIBRARY_PATH -u CKPT_PLUGIN_PATH ";
  if (!plugin_path.empty()) env += "CKPT_PLUGIN_PATH=" + q(plugin_path) + " ";
  std::string cmd = env + command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool has(const Result& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

// Where `ckpt plugins` says an installed plugin is: the prefix with symbolic links resolved.
std::string installed(const std::string& file) {
  return (fs::weakly_canonical(kPrefix) / "lib/ckpt/plugins" / file).string();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Configures and builds a project against the prefix, as the examples' READMEs say, with one
// job; `args` are more -D options.
Result build_project(const fs::path& source, const fs::path& build, const std::string& args = "") {
  std::string flags = CKPT_SANITIZE_FLAGS;
  std::string configure = std::string(CKPT_CMAKE) + " -S " + q(source) + " -B " + q(build) + " -G '" +
                          CKPT_GENERATOR + "' -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=" + CKPT_CXX_COMPILER +
                          " -DCMAKE_PREFIX_PATH=" + q(kPrefix) + args;
  if (!flags.empty()) {
    configure += " '-DCMAKE_CXX_FLAGS=" + flags + "'";
    for (const char* v : {"CMAKE_EXE_LINKER_FLAGS", "CMAKE_MODULE_LINKER_FLAGS", "CMAKE_SHARED_LINKER_FLAGS"})
      configure += std::string(" '-D") + v + "=" + CKPT_SANITIZE_LINK_FLAGS + "'";
  }
  Result c = run(configure);
  if (c.code != 0) return c;
  Result b = run(std::string(CKPT_CMAKE) + " --build " + q(build) + " -j 1");
  return {b.code, c.out + b.out};
}

Result build_example(const std::string& example, const fs::path& build) {
  return build_project(kSource / "sdk/examples" / example, build);
}

// N of gtest's "[==========] N tests from M test suites ran."; -1 when there is no such line.
long tests_ran(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(\[==========\] (\d+) tests? from \d+ test suites? ran)"))) return -1;
  return std::stol(m[1]);
}

// The cases --gtest_list_tests lists: its indented lines.
long tests_listed(const std::string& out) {
  std::istringstream in(out);
  long n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind("  ", 0) == 0;
  return n;
}

// Every line of `ckpt plugins` that lists a format: FORMAT VERSION EXTENSIONS FROM CAPABILITIES.
std::vector<std::vector<std::string>> format_rows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(out);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    if (line.rfind("plugin ", 0) == 0 || line.rfind("skipped ", 0) == 0 || line.empty() || line[0] == '(') continue;
    std::istringstream words(line);
    std::vector<std::string> row;
    for (std::string w; words >> w;) row.push_back(w);
    rows.push_back(row);
  }
  return rows;
}

class OutOfTree : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fs::remove_all(kScratch);
    fs::create_directories(kWork);
  }
  void SetUp() override {
    if (stop_) GTEST_FAIL() << "an earlier step failed; see it first";
  }
  void TearDown() override { stop_ = stop_ || HasFatalFailure(); }
  static inline bool stop_ = false;
};

TEST_F(OutOfTree, InstallPutsTheProgramsLibraryHeadersPluginsAndPackageInAPrefix) {
  Result r = run(std::string(CKPT_CMAKE) + " --install " + q(CKPT_BINARY_DIR) + " --prefix " + q(kPrefix));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* f : {"bin/ckpt", "bin/ckpt-conformance", "bin/ckpt-manifest", "include/ckpt/plugin_abi.h",
                        "include/ckpt/sdk.hpp", "include/ckpt/sdk_io.hpp", "include/ckpt/io.hpp",
                        "include/ckpt/sdk_skeleton.hpp", "include/ckpt/conformance.hpp", "lib/libckpt.so",
                        "lib/libckpt_conformance.a", "lib/libckpt_sdk_static.a",
                        "lib/ckpt/plugins/ckpt_json.so", "lib/ckpt/plugins/ckpt_json.ckpt-plugin.json",
                        "lib/ckpt/plugins/ckpt_msgpack.so", "lib/cmake/ckpt/ckptConfig.cmake",
                        "lib/cmake/ckpt/ckptConfigVersion.cmake", "lib/cmake/ckpt/ckptTargets.cmake",
                        "lib/cmake/ckpt/CkptPlugin.cmake", "lib/cmake/ckpt/CkptConformance.cmake"})
    EXPECT_TRUE(fs::exists(kPrefix / f)) << f << " is not installed";
  // No test plugin, and nothing of the trainer's dependencies, leaks into the package.
  EXPECT_FALSE(fs::exists(kPrefix / "lib/ckpt/plugins/ckpt_fake.so"));
  std::string targets = slurp(kPrefix / "lib/cmake/ckpt/ckptTargets.cmake");
  EXPECT_EQ(targets.find("DNNL"), std::string::npos) << "consumers of ckpt::ckpt would need oneDNN";
  EXPECT_EQ(targets.find("nlohmann"), std::string::npos) << "plugins would need nlohmann for the SDK's static library";
  EXPECT_EQ(targets.find(CKPT_BINARY_DIR), std::string::npos) << "the package points into the build tree";
}

TEST_F(OutOfTree, InstalledCkptFindsItsLibraryAndItsPluginsByItself) {
  Result r = run(q(kCkpt) + " plugins");
  ASSERT_EQ(r.code, 0) << r.out;
  auto rows = format_rows(r.out);
  ASSERT_FALSE(rows.empty()) << r.out;
  for (const auto& row : rows) {
    ASSERT_GE(row.size(), 4u) << r.out;
    EXPECT_EQ(row[3], "install") << "format " << row[0] << " was not found in the prefix:\n" << r.out;
  }
  EXPECT_TRUE(has(r, "plugin json: " + installed("ckpt_json.so"))) << r.out;
  EXPECT_FALSE(has(r, "skipped")) << "the installed ckpt looked somewhere it should not:\n" << r.out;
}

TEST_F(OutOfTree, HelloBuildsFromThePrefixWithFindPackage) {
  Result r = build_example("hello", kHelloBuild);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(kHelloBuild / "plugins/ckpt_hello.so")) << r.out;
  EXPECT_TRUE(fs::exists(kHelloBuild / "plugins/ckpt_hello.ckpt-plugin.json")) << r.out;
}

TEST_F(OutOfTree, InstalledCkptListsHelloFromThePluginPath) {
  Result r = run(q(kCkpt) + " plugins", (kHelloBuild / "plugins").string());
  ASSERT_EQ(r.code, 0) << r.out;
  bool found = false;
  for (const auto& row : format_rows(r.out))
    if (row.at(0) == "hello") {
      found = true;
      EXPECT_EQ(row.at(1), "1.0.0");
      EXPECT_EQ(row.at(2), ".hello");
      EXPECT_EQ(row.at(3), "CKPT_PLUGIN_PATH");
    }
  EXPECT_TRUE(found) << r.out;
  EXPECT_FALSE(has(r, "skipped")) << r.out;
}

TEST_F(OutOfTree, TheApplicationExampleSavesAndResumesWithCkptCkpt) {
  Result b = build_example("train_loop", kAppBuild);
  ASSERT_EQ(b.code, 0) << b.out;
  const std::string app = q(kAppBuild / "train_loop");
  Result first = run(app + " " + q(kWork / "run.json") + " 20");
  ASSERT_EQ(first.code, 0) << first.out;
  EXPECT_TRUE(has(first, "epoch 20: ")) << first.out;
  Result resumed = run(app + " " + q(kWork / "run.json") + " 60");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  Result straight = run(app + " " + q(kWork / "straight.json") + " 60");
  ASSERT_EQ(straight.code, 0) << straight.out;
  EXPECT_EQ(resumed.out, straight.out) << "resuming at epoch 20 did not end where an uninterrupted run ends";
  EXPECT_TRUE(has(straight, "epoch 60: weight 2.9")) << "the loop did not learn y = 3x + 1: " << straight.out;
  Result v = run(q(kCkpt) + " verify " + q(kWork / "run.json"));
  EXPECT_EQ(v.code, 0) << v.out;
}

TEST_F(OutOfTree, InstalledCkptConvertsToHelloAndBack) {
  const std::string path = (kHelloBuild / "plugins").string();
  Result to = run(q(kCkpt) + " convert " + q(kWork / "run.json") + " " + q(kWork / "run.hello"), path);
  ASSERT_EQ(to.code, 0) << to.out;
  EXPECT_EQ(slurp(kWork / "run.hello").rfind("hello-ckpt 2\n", 0), 0u) << "not a hello file";
  Result back = run(q(kCkpt) + " convert " + q(kWork / "run.hello") + " " + q(kWork / "back.msgpack"), path);
  ASSERT_EQ(back.code, 0) << back.out;
  EXPECT_TRUE(has(back, "(hello) -> ")) << back.out;
  Result v = run(q(kCkpt) + " verify " + q(kWork / "run.hello"), path);
  EXPECT_EQ(v.code, 0) << v.out;
  Result d = run(q(kCkpt) + " diff " + q(kWork / "run.json") + " " + q(kWork / "back.msgpack"), path);
  EXPECT_EQ(d.code, 0) << "json -> hello -> msgpack changed the checkpoint:\n" << d.out;
}

TEST_F(OutOfTree, TheConformanceTestOfTheHelloProjectPasses) {
  Result r = run(std::string(CKPT_CTEST) + " --test-dir " + q(kHelloBuild) + " --output-on-failure");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "100% tests passed")) << r.out;
}

// find_package(ckpt COMPONENTS conformance) and ckpt::conformance linked into a gtest program
// of the plugin author's own: it runs every case the installed ckpt-conformance runs on the
// same plugin (none lost to the static library's linking), and passes, and its own case too.
TEST_F(OutOfTree, AProgramLinkingCkptConformanceRunsTheWholeKitOnHello) {
  Result b = build_project(kSource / "tests/sdk/kit_consumer", kKitBuild,
                           " -DHELLO_DIR=" + q(kSource / "sdk/examples/hello"));
  ASSERT_EQ(b.code, 0) << b.out;
  const fs::path plugin = kKitBuild / "plugins/ckpt_hello.so";
  ASSERT_TRUE(fs::exists(plugin)) << b.out;
  Result list = run(q(kPrefix / "bin/ckpt-conformance") + " " + q(plugin) + " --quick --gtest_list_tests");
  ASSERT_EQ(list.code, 0) << list.out;
  const long kit_cases = tests_listed(list.out);
  ASSERT_GT(kit_cases, 20) << list.out;

  Result t = run(std::string(CKPT_CTEST) + " --test-dir " + q(kKitBuild) + " -V");
  EXPECT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(has(t, "100% tests passed")) << t.out;
  EXPECT_TRUE(has(t, "[       OK ] HelloOwn.AFileStartsWithItsHeaderAndReadsBack")) << t.out;
  EXPECT_TRUE(has(t, "[  PASSED  ] ")) << t.out;
  EXPECT_FALSE(has(t, "[  FAILED  ]")) << t.out;
  EXPECT_EQ(tests_ran(t.out), kit_cases + 1) << "the kit's cases and the program's own one:\n" << t.out;
}

TEST_F(OutOfTree, InstalledCkptChecksHelloWithoutComplaint) {
  Result r = run(q(kCkpt) + " plugins --check " + q(kHelloBuild / "plugins/ckpt_hello.so"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "no problems found")) << r.out;
}

TEST_F(OutOfTree, InstallingHelloIntoThePrefixIsAllItTakesToShipIt) {
  Result i = run(std::string(CKPT_CMAKE) + " --install " + q(kHelloBuild) + " --prefix " + q(kPrefix));
  ASSERT_EQ(i.code, 0) << i.out;
  Result r = run(q(kCkpt) + " plugins");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "plugin hello: " + installed("ckpt_hello.so"))) << r.out;
  Result read = run(q(kCkpt) + " inspect " + q(kWork / "run.hello"));
  EXPECT_EQ(read.code, 0) << read.out;
}

}  // namespace
