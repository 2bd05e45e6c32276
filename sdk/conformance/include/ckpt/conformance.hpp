// The conformance kit: one set of gtest cases that every format plugin must pass, run against a
// plugin library given at run time:
//
//   ckpt-conformance /path/ckpt_foo.so [--format NAME]... [--quick] [--seed N|random] [gtest flags]
//
// Cases are parametrized by format, so --gtest_filter='*/foo*' narrows to one format. A case a
// format cannot take (no nested groups, a dtype it does not hold) is skipped with the declared
// capability as the reason, never silently passed.
//
// Linked as a library (ckpt::conformance), a test program of one's own runs the same cases
// beside its own TESTs: its main calls run(argc, argv), or configure() and then
// ::testing::InitGoogleTest and RUN_ALL_TESTS (tests/sdk/kit_consumer/ does).
#pragma once

#include <ckpt/registry.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::conformance {

inline constexpr uint64_t kDefaultSeed = 20240611;

struct Settings {
  std::filesystem::path library;
  std::vector<std::string> formats;  // empty: every format of the library
  bool quick = false;                // no 64 MiB tensor, fewer corrupted files
  uint64_t seed = kDefaultSeed;      // for random bytes, flips and garbage
};

// One format under test.
struct Subject {
  std::string name;
  std::shared_ptr<const PluginInfo> plugin;
  size_t index = 0;

  Format format() const { return Format(plugin, index); }
  const FormatInfo& info() const { return plugin->formats[index]; }
};

// Loads the library in isolation and chooses the formats under test. Must run before
// ::testing::InitGoogleTest, which is when gtest asks for the parameters. Throws ckpt::Error
// when the library cannot be loaded or a named format is not in it.
void configure(const Settings& settings);
const Settings& settings();
const std::vector<Subject>& subjects();

// The whole program: parses the kit's own arguments, leaves gtest's to gtest, runs every case.
// Returns the process exit code (0 all passed, 1 failures, 2 bad usage or unloadable plugin).
int run(int argc, char** argv);

}  // namespace ckpt::conformance
