// What the reliability tests and tools share: the formats under test (every format the
// registry has, so a new plugin is covered the day it lands), a checkpoint of a chosen size
// shaped for what each format can hold, and small file helpers.
#pragma once

#include "scratch.hpp"

#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ckpt::reliability {

namespace fs = std::filesystem;

// Every format of the global registry that both reads and writes, by name.
std::vector<std::string> writable_formats();
// Those of them that hold a whole checkpoint (nested groups, attributes, arrays): the ones
// that keep meta/integrity and can carry a signature.
std::vector<std::string> checkpoint_formats();
// A gtest-safe parameter name for a format.
std::string param_name(const std::string& format);

// A document of about `bytes` bytes of tensor data, holding `generation` in a scalar tensor
// "gen" (and, where the format holds attributes, in an attribute as well). Formats that hold
// nested groups, attributes and arrays get a full schema-v1 checkpoint with meta/integrity,
// exactly as ckpt::save writes it; others get the tensors flat at the root, as convert would.
struct Sample {
  Document doc;
  bool has_integrity = false;
  // Tensor path -> XXH3 of its bytes, to tell the data of a file read back from what was meant.
  std::vector<std::pair<std::string, uint64_t>> expected;
};
Sample make_sample(const FormatInfo& format, uint64_t bytes, int64_t generation, uint64_t seed = 1);
// The generation a document read back holds (its "gen" tensor), or -1.
int64_t generation_of(const Document& doc);
// Empty when `doc` has exactly the tensors `sample` promised; else what differs.
std::string compare_data(const Document& doc, const Sample& sample);

// The file name a format's files get in these tests: "model" plus its first extension.
std::string file_name(const FormatInfo& format);

std::string read_file(const fs::path& p);
void write_file(const fs::path& p, const std::string& bytes);
// Names of the temporaries ckpt leaves in `dir` (".<name>.ckpt-tmp-<random>").
std::vector<fs::path> temporaries(const fs::path& dir);
// Everything in `dir` that is not a temporary.
std::vector<fs::path> visible_files(const fs::path& dir);

using ckpt_test::TempDir;

// Runs a shell command, returning its exit code and what it printed (stdout and stderr).
struct CommandResult {
  int code = -1;
  std::string out;
};
CommandResult run_command(const std::string& command);

// An unsigned integer from the environment, or `fallback`.
uint64_t env_u64(const char* name, uint64_t fallback);

#ifdef CKPT_CLI
// The command line of the ckpt program with `args`.
inline std::string cli(const std::string& args) { return std::string(CKPT_CLI) + " " + args; }
#endif

}  // namespace ckpt::reliability

namespace ckpt::reliability {

// A copy of `doc` whose "gen" tensor (and "generation" attribute, where there is one) says
// `generation`; tensors are shared, not copied.
Document with_generation(const Document& doc, int64_t generation);

}  // namespace ckpt::reliability
