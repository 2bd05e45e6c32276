// The registry against the test plugins of tests/plugins: listing without loading, real
// unloading, every way a plugin can be wrong, and how a format is chosen for a file.
#include "scratch.hpp"
#include "thrown.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/io.hpp>
#include <ckpt/plugin_abi.h>
#include <ckpt/registry.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <fstream>
#include <random>

using namespace ckpt;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

namespace {

fs::path plugin_dir(const std::string& folder) { return fs::path(CKPT_TEST_PLUGIN_DIR) / folder; }
fs::path library(const std::string& folder, const std::string& plugin) {
  return plugin_dir(folder) / ("ckpt_" + plugin + ".so");
}

Registry registry_over(std::initializer_list<const char*> folders) {
  std::vector<std::pair<fs::path, std::string>> dirs;
  for (const char* f : folders) dirs.emplace_back(plugin_dir(f), "test");
  return Registry(dirs);
}

// Asks the dynamic loader itself, so the answer does not depend on the registry's bookkeeping.
bool is_loaded(const fs::path& lib) {
  void* h = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h) ::dlclose(h);
  return h != nullptr;
}

using ckpt_test::TempDir;

size_t entries(const TempDir& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++n;
  return n;
}

Document sample() {
  Document d;
  d.set("producer", "test_registry").set("step", 7);
  d.add_tensor("w", Tensor::from<float>(DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6}));
  d.group("inner").set("flag", true).add_tensor("b", Tensor::from<int64_t>(DType::i64, {2}, {-1, 1}));
  return d;
}

void expect_sample(const Document& d) {
  const Tensor* w = d.find_tensor_path("w");
  const Tensor* b = d.find_tensor_path("inner/b");
  ASSERT_TRUE(w && b);
  Document want = sample();
  EXPECT_TRUE(w->bit_equal(*want.find_tensor_path("w")));
  EXPECT_TRUE(b->bit_equal(*want.find_tensor_path("inner/b")));
  ASSERT_NE(d.attribute("step"), nullptr);
  EXPECT_TRUE(value_equal(*d.attribute("step"), Value(int64_t{7})));
}

using ckpt_test::thrown;

std::vector<std::string> skipped_reasons(const Registry& r, const std::string& filename_prefix) {
  std::vector<std::string> out;
  for (const auto& s : r.skipped())
    if (s.path.filename().string().rfind(filename_prefix, 0) == 0) out.push_back(s.reason);
  return out;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// ---- listing and unloading ------------------------------------------------------------------

TEST(RegistryListing, DescribesFormatsFromTheManifestWithoutLoadingCode) {
  Registry reg = registry_over({"good"});
  EXPECT_TRUE(reg.skipped().empty());
  ASSERT_EQ(reg.format_names(), std::vector<std::string>{"fake"});
  Format f = reg.get("fake");
  EXPECT_EQ(f.info().extensions, std::vector<std::string>{".fake"});
  EXPECT_TRUE(f.info().can(CKPT_CAP_MAP));
  EXPECT_TRUE(f.info().holds(DType::bf16));
  EXPECT_EQ(f.plugin().library, library("good", "fake"));
  // Listing and naming a format, and choosing one for writing by extension, read only JSON.
  EXPECT_EQ(reg.for_writing("x.fake", "auto").name(), "fake");
  EXPECT_FALSE(is_loaded(library("good", "fake")));
}

TEST(Unloading, LibraryLeavesMemoryWhenTheLastFormatIsGone) {
  const fs::path lib = library("good", "fake");
  TempDir tmp;
  ASSERT_FALSE(is_loaded(lib));
  {
    Registry reg = registry_over({"good"});
    Format f = reg.get("fake");
    write_document(sample(), tmp / "a.fake", f);
    EXPECT_TRUE(is_loaded(lib));
  }
  EXPECT_FALSE(is_loaded(lib));
  // Loading again after an unload starts the plugin afresh and works.
  Registry reg = registry_over({"good"});
  expect_sample(read_document(tmp / "a.fake", {.registry = &reg}));
  EXPECT_FALSE(is_loaded(lib));
}

TEST(Unloading, ReaderKeepsTheLibraryLoaded) {
  const fs::path lib = library("good", "fake");
  TempDir tmp;
  std::shared_ptr<FormatReader> reader;
  {
    Registry reg = registry_over({"good"});
    write_document(sample(), tmp / "a.fake", reg.get("fake"));
    reader = reg.get("fake").open_reader(tmp / "a.fake", {});
  }
  EXPECT_TRUE(is_loaded(lib));
  expect_sample(reader->load(false));
  reader.reset();
  EXPECT_FALSE(is_loaded(lib));
}

TEST(Unloading, MappedTensorKeepsTheLibraryLoaded) {
  const fs::path lib = library("good", "fake");
  TempDir tmp;
  std::optional<Tensor> mapped;
  {
    Registry reg = registry_over({"good"});
    write_document(sample(), tmp / "a.fake", reg.get("fake"));
    mapped = reg.get("fake").open_reader(tmp / "a.fake", {})->map("w");
  }
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(mapped->storage_kind(), StorageKind::mapped);
  EXPECT_TRUE(is_loaded(lib));
  EXPECT_TRUE(mapped->bit_equal(*sample().find_tensor_path("w")));
  mapped.reset();
  EXPECT_FALSE(is_loaded(lib));
}

TEST(Unloading, WriterKeepsTheLibraryLoaded) {
  const fs::path lib = library("good", "fake");
  TempDir tmp;
  std::unique_ptr<FormatWriter> writer;
  {
    Registry reg = registry_over({"good"});
    writer = reg.get("fake").open_writer(tmp / "w.fake", {});
  }
  EXPECT_TRUE(is_loaded(lib));
  writer->write(sample());
  writer.reset();
  EXPECT_FALSE(is_loaded(lib));
  Registry reg = registry_over({"good"});
  expect_sample(read_document(tmp / "w.fake", {.registry = &reg}));
}

TEST(Unloading, LoadLibraryInfoLeavesNothingLoaded) {
  const fs::path lib = library("good", "fake");
  auto info = Registry::load_library_info(lib);
  EXPECT_FALSE(is_loaded(lib));
  EXPECT_EQ(info->name, "fake");
  EXPECT_EQ(info->abi_version, CKPT_ABI_VERSION);
  EXPECT_EQ(info->manifest, plugin_dir("good") / "ckpt_fake.ckpt-plugin.json");
  ASSERT_EQ(info->formats.size(), 1u);
  TempDir tmp;
  {
    Format f(info, 0);
    write_document(sample(), tmp / "a.fake", f);
    expect_sample(f.open_reader(tmp / "a.fake", {})->load());
  }
  EXPECT_FALSE(is_loaded(lib));
}

// ---- plugins that are wrong ------------------------------------------------------------------

TEST(WrongAbi, ManifestFromAnotherAbiIsSkippedUnloaded) {
  Registry reg = registry_over({"abi999"});
  EXPECT_TRUE(reg.formats().empty());
  auto reasons = skipped_reasons(reg, "ckpt_abi999");
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_THAT(reasons[0], HasSubstr("ABI version 999"));
  EXPECT_FALSE(is_loaded(library("abi999", "abi999")));
}

TEST(WrongAbi, DescriptorContradictingItsManifestFailsOnUse) {
  Registry reg = registry_over({"abi2"});
  // The manifest is all the registry reads while listing, and it claims ABI 1.
  ASSERT_EQ(reg.format_names(), std::vector<std::string>{"abitwo"});
  TempDir tmp;
  Format f = reg.get("abitwo");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(sample(), tmp / "a.abitwo", f); }),
              HasSubstr("ABI version 2"));
  EXPECT_THAT(thrown<PluginError>([&] { f.identify({}, 0); }), HasSubstr("ABI version 2"));
  EXPECT_THAT(thrown<PluginError>([&] { Registry::load_library_info(library("abi2", "abi2")); }),
              HasSubstr("ABI version 2"));
  EXPECT_EQ(entries(tmp), 0u);
  EXPECT_FALSE(is_loaded(library("abi2", "abi2")));
}

TEST(BrokenManifest, EachIsSkippedWithItsReason) {
  Registry reg = registry_over({"broken"});
  EXPECT_TRUE(reg.plugins().empty());
  EXPECT_THAT(skipped_reasons(reg, "ckpt_notjson.ckpt-plugin"), ::testing::ElementsAre(HasSubstr("not JSON")));
  EXPECT_THAT(skipped_reasons(reg, "ckpt_incomplete"), ::testing::ElementsAre(HasSubstr("library")));
  EXPECT_THAT(skipped_reasons(reg, "ckpt_badcap"), ::testing::ElementsAre(HasSubstr("teleport")));
  // A manifest must not point the loader at a library outside its own folder.
  EXPECT_THAT(skipped_reasons(reg, "ckpt_escape"), ::testing::ElementsAre(HasSubstr("file name")));
  EXPECT_FALSE(is_loaded(library("good", "fake")));
}

// One line per broken plugin: its library is explained by the manifest's failure, not reported
// again as a library without a manifest.
TEST(BrokenManifest, LibraryBesideABrokenManifestIsReportedOnce) {
  Registry reg = registry_over({"broken"});
  EXPECT_THAT(skipped_reasons(reg, "ckpt_notjson"), ::testing::ElementsAre(HasSubstr("not JSON")));
}

TEST(Duplicates, SecondProviderOfAFormatIsSkipped) {
  Registry reg = registry_over({"good", "dup"});
  ASSERT_EQ(reg.format_names(), std::vector<std::string>{"fake"});
  EXPECT_EQ(reg.get("fake").plugin().library, library("good", "fake"));
  auto reasons = skipped_reasons(reg, "ckpt_fakedup");
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_THAT(reasons[0], HasSubstr("duplicate"));
  EXPECT_THAT(reasons[0], HasSubstr("fake"));

  // Search order decides which one wins.
  Registry reversed = registry_over({"dup", "good"});
  EXPECT_EQ(reversed.get("fake").plugin().library, library("dup", "fakedup"));
  EXPECT_EQ(skipped_reasons(reversed, "ckpt_fake.").size(), 1u);
}

TEST(MissingManifest, LibraryAloneIsSkippedUnloaded) {
  Registry reg = registry_over({"nomanifest"});
  EXPECT_TRUE(reg.formats().empty());
  EXPECT_THAT(skipped_reasons(reg, "ckpt_nomanifest"), ::testing::ElementsAre(HasSubstr("no manifest")));
  EXPECT_FALSE(is_loaded(library("nomanifest", "nomanifest")));
}

TEST(LyingManifest, UsingItFailsNamingTheManifest) {
  Registry reg = registry_over({"liar"});
  ASSERT_EQ(reg.format_names(), std::vector<std::string>{"liar"});
  TempDir tmp;
  Format f = reg.get("liar");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(sample(), tmp / "a.liar", f); }), HasSubstr("manifest"));
  EXPECT_THAT(thrown<PluginError>([&] { f.identify({}, 0); }), HasSubstr("manifest"));
  EXPECT_THAT(thrown<PluginError>([&] { Registry::load_library_info(library("liar", "liar")); }),
              HasSubstr("manifest"));
  EXPECT_EQ(entries(tmp), 0u);
  EXPECT_FALSE(is_loaded(library("liar", "liar")));
}

TEST(ThrowingPlugin, EveryFailureArrivesAsACkptError) {
  Registry reg = registry_over({"throwing"});
  ASSERT_THAT(reg.format_names(), UnorderedElementsAre("throw_open", "throw_late"));
  TempDir tmp;
  write_bytes(tmp / "junk.bin", "0123456789");

  Format open = reg.get("throw_open");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(sample(), tmp / "a.throwopen", open); }),
              HasSubstr("throwing plugin: open_writer"));
  // `throw 42` carries no message; the host still names the file.
  EXPECT_THAT(thrown<PluginError>([&] { open.open_reader(tmp / "junk.bin", {}); }), HasSubstr("junk.bin"));

  Format late = reg.get("throw_late");
  EXPECT_THAT(thrown<PluginError>([&] { write_document(sample(), tmp / "a.throwlate", late); }),
              HasSubstr("throwing plugin: begin_group"));
  auto reader = late.open_reader(tmp / "junk.bin", {});
  EXPECT_THROW(reader->tree(), PluginError);
  EXPECT_THROW(reader->read("w"), PluginError);
  EXPECT_THROW(reader->load(), PluginError);
  reader.reset();

  // identify must not throw across the boundary: the SDK turns a throw into "not mine".
  std::vector<uint8_t> head = {'C', 'K'};
  EXPECT_EQ(open.identify(head, head.size()), 0);
  EXPECT_EQ(late.identify(head, head.size()), 0);
  EXPECT_THROW(reg.for_reading(tmp / "junk.throwopen", "auto"), IoError);
  write_bytes(tmp / "junk.throwopen", "x");
  EXPECT_THAT(thrown<FormatError>([&] { reg.for_reading(tmp / "junk.throwopen", "auto"); }),
              HasSubstr("none of the known formats"));

  // Failed writes leave no temporary behind.
  EXPECT_EQ(entries(tmp), 2u);

  // And the host carries on.
  Registry good = registry_over({"good"});
  write_document(sample(), tmp / "ok.fake", good.get("fake"));
  expect_sample(read_document(tmp / "ok.fake", {.registry = &good}));
}

TEST(BadEntry, MissingEntrySymbolIsAPluginError) {
  Registry reg = registry_over({"badentry"});
  ASSERT_THAT(reg.format_names(), UnorderedElementsAre("noentry", "refuse"));
  TempDir tmp;
  EXPECT_THAT(thrown<PluginError>([&] { write_document(sample(), tmp / "a.noentry", reg.get("noentry")); }),
              HasSubstr(CKPT_PLUGIN_ENTRY_SYMBOL));
  EXPECT_THAT(thrown<PluginError>([&] { Registry::load_library_info(library("badentry", "noentry")); }),
              HasSubstr(CKPT_PLUGIN_ENTRY_SYMBOL));
  EXPECT_FALSE(is_loaded(library("badentry", "noentry")));
}

TEST(BadEntry, EntryReturningNullIsAPluginError) {
  Registry reg = registry_over({"badentry"});
  TempDir tmp;
  write_bytes(tmp / "a.refuse", "x");
  EXPECT_THAT(thrown<PluginError>([&] { reg.get("refuse").open_reader(tmp / "a.refuse", {}); }),
              HasSubstr("refused"));
  EXPECT_FALSE(is_loaded(library("badentry", "refuse")));
}

// ---- choosing a format ----------------------------------------------------------------------

class FormatChoice : public ::testing::Test {
 protected:
  void SetUp() override {
    write_document(sample(), tmp / "a.alpha", reg.get("alpha"));
    write_document(sample(), tmp / "b.beta", reg.get("beta"));
  }
  // A copy of `from` under another name, so contents and extension can disagree.
  fs::path copy(const char* from, const char* to) {
    fs::copy_file(tmp / from, tmp / to);
    return tmp / to;
  }
  Registry reg = registry_over({"choice"});
  TempDir tmp;
};

TEST_F(FormatChoice, ExplicitNameWins) {
  fs::path beta_in_alpha = copy("b.beta", "b.alpha");
  EXPECT_EQ(reg.for_reading(beta_in_alpha, "alpha").name(), "alpha");
  EXPECT_EQ(reg.for_writing(tmp / "x.alpha", "beta").name(), "beta");
  // Even when the named format would refuse the file: the user said so, the reader decides.
  EXPECT_THROW(read_document(beta_in_alpha, {.format = "alpha", .registry = &reg}), FormatError);
}

TEST_F(FormatChoice, ExtensionProposesAndIdentifyConfirms) {
  EXPECT_EQ(reg.for_reading(tmp / "a.alpha", "auto").name(), "alpha");
  EXPECT_EQ(reg.for_reading(tmp / "b.beta", "").name(), "beta");
  EXPECT_EQ(reg.for_writing(tmp / "UPPER.ALPHA", "auto").name(), "alpha");
  expect_sample(read_document(tmp / "b.beta", {.registry = &reg}));
}

TEST_F(FormatChoice, IdentifyOverridesAMisleadingExtension) {
  EXPECT_EQ(reg.for_reading(copy("b.beta", "b.alpha"), "auto").name(), "beta");
}

TEST_F(FormatChoice, IdentifyOverAllWhenTheExtensionIsUnknown) {
  EXPECT_EQ(reg.for_reading(copy("b.beta", "b.bin"), "auto").name(), "beta");
  EXPECT_EQ(reg.for_reading(copy("a.alpha", "no_extension"), "auto").name(), "alpha");
  expect_sample(read_document(tmp / "no_extension", {.registry = &reg}));
}

TEST_F(FormatChoice, NothingClaimsGarbage) {
  write_bytes(tmp / "junk.alpha", std::string(100, 'x'));
  std::string msg = thrown<FormatError>([&] { reg.for_reading(tmp / "junk.alpha", "auto"); });
  EXPECT_THAT(msg, HasSubstr("junk.alpha"));
  EXPECT_THAT(msg, HasSubstr("alpha"));
  EXPECT_THAT(msg, HasSubstr("beta"));
  EXPECT_THROW(reg.for_reading(tmp / "does-not-exist.alpha", "auto"), IoError);
}

TEST_F(FormatChoice, UnknownNameIsAUsageErrorListingKnownNames) {
  std::string msg = thrown<UsageError>([&] { reg.get("gamma"); });
  EXPECT_THAT(msg, HasSubstr("gamma"));
  EXPECT_THAT(msg, HasSubstr("alpha"));
  EXPECT_THAT(msg, HasSubstr("beta"));
  EXPECT_THROW(reg.for_reading(tmp / "a.alpha", "gamma"), UsageError);
  EXPECT_THROW(write_document(sample(), tmp / "c.alpha", {.format = "gamma", .registry = &reg}), UsageError);

  msg = thrown<UsageError>([&] { reg.for_writing(tmp / "c.unknown", "auto"); });
  EXPECT_THAT(msg, HasSubstr("c.unknown"));
  EXPECT_THAT(msg, HasSubstr("alpha"));

  Registry empty(std::vector<std::pair<fs::path, std::string>>{{tmp.path / "no-plugins-here", "test"}});
  EXPECT_THAT(thrown<UsageError>([&] { empty.get("alpha"); }), HasSubstr("none"));
}

}  // namespace
