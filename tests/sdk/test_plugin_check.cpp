// `ckpt plugins --check LIBRARY` as a plugin author runs it: a good plugin passes; each kind of
// broken plugin gets a line saying what is wrong and how to fix it, and exit code 1.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const fs::path kPlugins = CKPT_TEST_PLUGIN_DIR;

struct Result {
  int code;
  std::string out;
};

Result check(const fs::path& library) {
  std::string cmd = std::string(CKPT_CLI) + " plugins --check '" + library.string() + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool has(const Result& r, const std::string& text) { return r.out.find(text) != std::string::npos; }

TEST(PluginCheck, TheHelloExamplePasses) {
  Result r = check(kPlugins / "sdk/hello-abi-v1/ckpt_hello.so");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "ok    file name ckpt_hello.so")) << r.out;
  EXPECT_TRUE(has(r, "ok    loads alone: plugin 'hello' 1.0.0, ABI 1, formats: hello (read, write,")) << r.out;
  EXPECT_TRUE(has(r, "ok    the manifest matches the library")) << r.out;
  EXPECT_TRUE(has(r, "conformance kit (quick): ")) << r.out;
  EXPECT_TRUE(has(r, " passed, 0 failed")) << r.out;
  EXPECT_TRUE(has(r, "no problems found")) << r.out;
  EXPECT_FALSE(has(r, "FIX")) << r.out;
}

TEST(PluginCheck, AMissingManifestSaysHowToWriteOne) {
  Result r = check(kPlugins / "nomanifest/ckpt_nomanifest.so");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "FIX   no manifest ckpt_nomanifest.ckpt-plugin.json beside the library")) << r.out;
  EXPECT_TRUE(has(r, "how: build with ckpt_add_format_plugin")) << r.out;
  EXPECT_TRUE(has(r, "ckpt-manifest " + (kPlugins / "nomanifest/ckpt_nomanifest.so").string())) << r.out;
  // The library itself is fine, so the kit still runs; it reports the missing manifest too.
  EXPECT_TRUE(has(r, "conformance Conformance/Declaration.HasAManifestBesideTheLibrary/nomanifest")) << r.out;
}

TEST(PluginCheck, AStaleManifestIsReportedAsStale) {
  Result r = check(kPlugins / "liar/ckpt_liar.so");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "FIX   cannot load it:")) << r.out;
  EXPECT_TRUE(has(r, "does not match its manifest")) << r.out;
  EXPECT_TRUE(has(r, "how: the manifest is stale")) << r.out;
}

TEST(PluginCheck, ALibraryWithoutTheEntryPointIsToldToDeclareIt) {
  Result r = check(kPlugins / "badentry/ckpt_noentry.so");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "does not export ckpt_plugin_entry_v1")) << r.out;
  EXPECT_TRUE(has(r, "how: declare the plugin with CKPT_DECLARE_PLUGIN")) << r.out;
}

TEST(PluginCheck, FailedCasesAreListedWithWhatTheyHoldThePluginTo) {
  Result r = check(kPlugins / "throwing/ckpt_throwing.so");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "FIX   conformance Conformance/RoundTrip.EmptyDocument/")) << r.out;
  EXPECT_TRUE(has(r, "how: everything the format declares it holds must come back bit for bit")) << r.out;
  EXPECT_TRUE(has(r, "problem(s) to fix")) << r.out;
  EXPECT_TRUE(has(r, "the kit's whole output: ")) << r.out;
}

TEST(PluginCheck, APluginThatCrashesIsReportedWithTheCaseItCrashedIn) {
  Result r = check(kPlugins / "sdk/crashing/ckpt_crashing.so");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "FIX   the plugin crashed (Aborted) in conformance case Conformance/")) << r.out;
  EXPECT_TRUE(has(r, "--gtest_filter='Conformance/")) << r.out;
}

TEST(PluginCheck, AFileNotNamedForItsPluginIsReported) {
  fs::path dir = fs::temp_directory_path() / ("ckpt-check-name-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  fs::copy_file(kPlugins / "sdk/hello-abi-v1/ckpt_hello.so", dir / "libhello.so");
  Result r = check(dir / "libhello.so");
  fs::remove_all(dir);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r, "FIX   file name 'libhello.so': the registry loads only files named ckpt_<plugin>.so")) << r.out;
  EXPECT_TRUE(has(r, "FIX   no manifest libhello.ckpt-plugin.json")) << r.out;
}

TEST(PluginCheck, NoSuchFileIsBadUsage) {
  Result r = check(kPlugins / "no/such/ckpt_plugin.so");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_TRUE(has(r, "no plugin library at")) << r.out;
}

}  // namespace
