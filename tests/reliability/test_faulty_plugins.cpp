// Faulty plugins (tests/plugins): one that throws from every entry point, one that returns
// error statuses (ill-formed ones too), one built for another ABI, one whose manifest lies, one
// that cannot be loaded (a missing symbol), one whose entry point throws. The host lists each
// as skipped or fails the one operation with a typed error naming the plugin or file, and
// carries on with the good formats. Then every plugin is loaded and unloaded many times
// (1000 by default) and nothing grows: memory, file descriptors, loaded libraries.
#include "common.hpp"
#include "sanitizers.hpp"
#include "thrown.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/plugin_abi.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <malloc.h>

#ifdef CKPT_TEST_ASAN
// libasan exports it; GCC ships no header for it (clang's sanitizer/allocator_interface.h).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

using namespace ckpt;
using namespace ckpt::reliability;
using ::testing::HasSubstr;

namespace {

const fs::path kTestPlugins = CKPT_TEST_PLUGIN_DIR;
const std::vector<std::string> kFaultyFolders = {"throwing", "statuses", "abi2", "abi999", "liar",
                                                 "unresolved", "entrythrows", "badentry", "broken", "nomanifest"};

Registry registry_over(const std::vector<std::string>& folders, bool with_real_plugins) {
  std::vector<std::pair<fs::path, std::string>> dirs;
  for (const auto& f : folders) dirs.emplace_back(kTestPlugins / f, "test");
  if (with_real_plugins)
    for (const auto& d : Registry::default_search_path()) dirs.push_back(d);
  return Registry(dirs);
}

bool is_loaded(const fs::path& lib) {
  void* h = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h) ::dlclose(h);
  return h != nullptr;
}

using ckpt_test::thrown;

Document small_doc() {
  Document d;
  d.set("n", 1);
  d.add_tensor("w", Tensor::from<float>(DType::f32, {2}, {1, 2}));
  return d;
}

// The host carries on: the real formats still write, choose and read after the faulty ones
// failed, in the same registry.
void expect_host_works(const Registry& reg, const fs::path& dir) {
  for (const auto& name : writable_formats()) {
    const Format f = reg.get(name);
    const fs::path p = dir / ("ok" + file_name(f.info()).substr(5));
    Sample s = make_sample(f.info(), 1024, 1);
    write_document(s.doc, p, f);
    LoadOptions lo;
    lo.registry = &reg;
    EXPECT_EQ(reg.for_reading(p, "auto").name(), name);
    EXPECT_TRUE(compare_data(read_document(p, lo), s).empty()) << name;
  }
}

TEST(FaultyPlugins, ThrowingFromEveryEntryFailsEachOperationWithAPluginError) {
  Registry reg = registry_over({"throwing"}, true);
  TempDir tmp("throwing");
  write_file(tmp.path / "junk.bin", "0123456789");
  for (const char* name : {"throw_open", "throw_late"}) {
    const Format f = reg.get(name);
    EXPECT_THAT(thrown<PluginError>([&] { write_document(small_doc(), tmp.path / "a.x", f); }),
                HasSubstr("a.x")) << name;
    EXPECT_EQ(f.identify(std::vector<uint8_t>{1, 2, 3}, 3), 0) << name;
  }
  auto reader = reg.get("throw_late").open_reader(tmp.path / "junk.bin", {});
  EXPECT_THAT(thrown<PluginError>([&] { reader->tree(); }), HasSubstr("junk.bin"));
  reader.reset();
  EXPECT_EQ(temporaries(tmp.path).size(), 0u);
  expect_host_works(reg, tmp.path);
}

TEST(FaultyPlugins, ErrorStatusesBecomeTypedErrorsWhateverTheirCode) {
  Registry reg = registry_over({"statuses"}, true);
  TempDir tmp("statuses");
  const Format open = reg.get("status_open");
  auto write_with = [&](const std::string& code) {
    auto w = open.open_writer(tmp.path / "a.statusopen", {{"code", code}});
  };
  EXPECT_THAT(thrown<FormatError>([&] { write_with("1"); }), HasSubstr("open_writer fails as asked"));
  EXPECT_THAT(thrown<IoError>([&] { write_with("2"); }), HasSubstr("a.statusopen"));
  EXPECT_THAT(thrown<IntegrityError>([&] { write_with("3"); }), HasSubstr("a.statusopen"));
  EXPECT_THAT(thrown<UnsupportedError>([&] { write_with("4"); }), HasSubstr("a.statusopen"));
  EXPECT_THAT(thrown<UsageError>([&] { write_with("5"); }), HasSubstr("a.statusopen"));
  EXPECT_THAT(thrown<IoError>([&] { write_with("6"); }), HasSubstr("a.statusopen"));
  EXPECT_THROW(write_with("7"), std::bad_alloc);
  EXPECT_THAT(thrown<LimitError>([&] { write_with("8"); }), HasSubstr("a.statusopen"));
  // A bug in the plugin, a status that says "OK", a code from the future: internal errors.
  for (const char* code : {"9", "0", "42", "-3"})
    EXPECT_THAT(thrown<PluginError>([&] { write_with(code); }), HasSubstr("internal error")) << code;
  EXPECT_THAT(thrown<PluginError>([&] { write_with("none"); }), HasSubstr("no writer"));
  write_file(tmp.path / "x.statusopen", "x");
  EXPECT_THAT(thrown<PluginError>([&] { open.open_reader(tmp.path / "x.statusopen", {{"code", "none"}}); }),
              HasSubstr("no reader"));

  const Format late = reg.get("status_late");
  EXPECT_THAT(thrown<LimitError>([&] { write_document(small_doc(), tmp.path / "b.statuslate", late); }),
              HasSubstr("status plugin: begin_group"));
  auto reader = late.open_reader(tmp.path / "x.statusopen", {});
  EXPECT_THAT(thrown<FormatError>([&] { reader->tree(); }), HasSubstr("status plugin: list"));
  reader.reset();
  // Failed saves leave nothing behind but the file the test wrote.
  EXPECT_EQ(temporaries(tmp.path).size(), 0u);
  EXPECT_EQ(visible_files(tmp.path).size(), 1u);
  expect_host_works(reg, tmp.path);
}

TEST(FaultyPlugins, WrongAbiIsSkippedOrFailsOnUse) {
  Registry reg = registry_over({"abi999", "abi2"}, true);
  bool skipped999 = false;
  for (const auto& s : reg.skipped()) skipped999 = skipped999 || s.reason.find("ABI version 999") != std::string::npos;
  EXPECT_TRUE(skipped999);
  TempDir tmp("abi");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(small_doc(), tmp.path / "a.abitwo", reg.get("abitwo")); }),
              HasSubstr("ABI version 2"));
  expect_host_works(reg, tmp.path);
}

TEST(FaultyPlugins, LyingManifestFailsOnUseNamingTheManifest) {
  Registry reg = registry_over({"liar"}, true);
  TempDir tmp("liar");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(small_doc(), tmp.path / "a.liar", reg.get("liar")); }),
              HasSubstr("does not match its manifest"));
  expect_host_works(reg, tmp.path);
}

TEST(FaultyPlugins, UnloadableLibraryFailsOnUseNamingTheMissingSymbol) {
  Registry reg = registry_over({"unresolved"}, true);
  TempDir tmp("unresolved");
  std::string msg = thrown<PluginError>([&] { write_document(small_doc(), tmp.path / "a.unresolved", reg.get("unresolved")); });
  EXPECT_THAT(msg, HasSubstr("ckpt_unresolved.so"));
  EXPECT_THAT(msg, HasSubstr("ckpt_test_symbol_that_no_library_defines"));
  EXPECT_THAT(thrown<PluginError>([&] { reg.get("unresolved").identify(std::vector<uint8_t>{1}, 1); }),
              HasSubstr("undefined symbol"));
  expect_host_works(reg, tmp.path);
}

TEST(FaultyPlugins, EntryPointThatThrowsFailsOnUse) {
  Registry reg = registry_over({"entrythrows"}, true);
  TempDir tmp("entrythrows");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(small_doc(), tmp.path / "a.entrythrows", reg.get("entrythrows")); }),
              HasSubstr("ckpt_entrythrows.so"));
  expect_host_works(reg, tmp.path);
}

// Every faulty plugin at once, beside the real ones: the program lists them and keeps working.
TEST(FaultyPlugins, TheProgramListsThemAndCarriesOn) {
  std::string path;
  for (const auto& f : kFaultyFolders) path += (path.empty() ? "" : ":") + (kTestPlugins / f).string();
  TempDir tmp("cli");
  write_document(make_sample(Registry::global().get("json").info(), 1024, 1).doc, tmp.path / "a.json");
  auto list = run_command("CKPT_PLUGIN_PATH=" + path + " " + CKPT_CLI + " plugins");
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_THAT(list.out, HasSubstr("skipped"));
  EXPECT_THAT(list.out, HasSubstr("ABI version 999"));
  // A file of unknown extension makes the host ask every format, the faulty ones included.
  fs::copy_file(tmp.path / "a.json", tmp.path / "a.data");
  for (const char* file : {"a.json", "a.data"}) {
    auto v = run_command("CKPT_PLUGIN_PATH=" + path + " " + CKPT_CLI + " inspect " + (tmp.path / file).string());
    EXPECT_EQ(v.code, 0) << file << ": " << v.out;
  }
  // The source holds only what the unresolved format declares, so the conversion gets as far
  // as loading the plugin instead of stopping at the lossless-conversion plan.
  write_document(small_doc(), tmp.path / "small.json");
  auto bad = run_command("CKPT_PLUGIN_PATH=" + path + " " + CKPT_CLI + " convert --allow-lossy " +
                         (tmp.path / "small.json").string() + " " + (tmp.path / "b.unresolved").string());
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("ckpt_test_symbol_that_no_library_defines"));
}

size_t allocated_bytes() {
#ifdef CKPT_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

size_t open_descriptors() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Every test plugin (faulty or not) and every real one, loaded, used and unloaded in rounds.
// LeakSanitizer checks the ASan build at exit; here, memory and descriptors must stay flat.
TEST(FaultyPlugins, LoadingAndUnloadingEveryPluginManyTimesLeaksNothing) {
  std::vector<std::string> folders;
  for (const auto& e : fs::directory_iterator(kTestPlugins))
    if (e.is_directory()) folders.push_back(e.path().filename().string());
  std::sort(folders.begin(), folders.end());
  TempDir tmp("loads");
#ifdef CKPT_TEST_ASAN
  // Each round takes ~0.3 s under ASan; LeakSanitizer's check at exit does the rest.
  const uint64_t rounds = env_u64("CKPT_RELIABILITY_LOADS", 200);
#else
  const uint64_t rounds = env_u64("CKPT_RELIABILITY_LOADS", 1000);
#endif
  std::vector<std::pair<std::string, fs::path>> files;
  {
    Registry reg = registry_over({}, true);
    for (const auto& name : writable_formats()) {
      fs::path p = tmp.path / ("f" + file_name(reg.get(name).info()).substr(5));
      write_document(make_sample(reg.get(name).info(), 1024, 1).doc, p, reg.get(name));
      files.emplace_back(name, p);
    }
  }
  std::vector<fs::path> libraries;
  const Registry reg = registry_over(folders, true);
  auto round = [&] {
    // Formats made afresh each round: every library is loaded on first use and unloaded when
    // the round's last object from it is gone.
    for (const auto& f : reg.formats()) {
      try {
        f.identify(std::vector<uint8_t>(16, 0), 16);
      } catch (const Error&) {
      }
    }
    for (const auto& [name, p] : files) {
      LoadOptions lo;
      lo.format = name;
      lo.registry = &reg;
      read_document(p, lo);
    }
    if (libraries.empty())
      for (const auto& p : reg.plugins()) libraries.push_back(p->library);
  };
  // Warm up: first loads fill caches (libstdc++, libhdf5's free lists, the dynamic loader's).
  for (int i = 0; i < 20; ++i) round();
  const size_t bytes_before = allocated_bytes();
  const size_t fds_before = open_descriptors();
  for (uint64_t i = 0; i < rounds; ++i) round();
  const size_t bytes_after = allocated_bytes();
  const size_t growth = bytes_after > bytes_before ? bytes_after - bytes_before : 0;
  std::printf("[loads] %llu rounds over %zu plugins: heap %zu -> %zu bytes, %zu -> %zu descriptors\n",
              static_cast<unsigned long long>(rounds), libraries.size(), bytes_before, bytes_after, fds_before,
              open_descriptors());
  // A leak of even one small allocation per round would show as rounds x its size.
#ifdef CKPT_TEST_ASAN
  // Under ASan, glibc's list of exit handlers (__new_exitfn) grows by ~340 bytes per plugin
  // loaded: the slots a dlclose'd plugin frees sit below a live one and are not reused
  // (__sanitizer_print_memory_profile after 50 and 150 rounds: 6 KB a round over 18 plugins,
  // all of it there). Memory the program lost is LeakSanitizer's to report at exit; the plain
  // build holds the tight bound.
  EXPECT_LT(growth, rounds * libraries.size() * 1024) << "the heap grew by " << growth << " bytes over " << rounds << " rounds";
#else
  EXPECT_LT(growth, 64u * 1024) << "the heap grew by " << growth << " bytes over " << rounds << " rounds";
#endif
  EXPECT_EQ(open_descriptors(), fds_before);
  ASSERT_FALSE(libraries.empty());
  for (const auto& lib : libraries) {
    if (lib.string().find(kTestPlugins.string()) == 0) {
      EXPECT_FALSE(is_loaded(lib)) << lib;
    }
  }
}

}  // namespace
