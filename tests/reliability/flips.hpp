// One random byte of a checkpoint changed, many times over: what `ckpt verify` says and what a
// verified load returns, against what the change really did to the content. Shared by the CI
// test and the ckpt_corruption_stats program that makes the figures of docs/reliability.md.
#pragma once

#include "common.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ckpt::reliability {

struct FlipStats {
  std::string format;
  bool has_integrity = false;
  uint64_t file_bytes = 0;
  uint64_t flips = 0;
  uint64_t detected = 0;   // verify reported a problem, or refused the file as damaged
  uint64_t harmless = 0;   // verify passed and the content is exactly the original
  uint64_t missed = 0;     // verify passed but the content changed: must stay 0
  uint64_t load_refused = 0;    // load with verify on threw a ckpt error
  uint64_t load_identical = 0;  // load with verify on returned exactly the original
  uint64_t load_wrong = 0;      // load with verify on returned other content: must stay 0
  uint64_t not_ckpt_error = 0;  // something other than a ckpt::Error escaped: must stay 0
  uint64_t cli_disagreed = 0;   // `ckpt verify` exit code said otherwise than the library
  std::vector<std::string> examples;  // the first few missed / wrong / escaped, with offsets
};

struct FlipOptions {
  uint64_t flips = 1000;
  uint64_t seed = 1;
  uint64_t tensor_bytes = 16 << 10;  // small, so metadata is a good share of the file
  std::string cli{};                  // when set, `ckpt verify` runs on every flip too
};

// Writes a sample checkpoint in `format` into `workdir`, then flips one byte (XOR with a
// random non-zero value at a random offset) `options.flips` times, each on a fresh copy.
FlipStats run_flips(const std::string& format, const fs::path& workdir, const FlipOptions& options);

}  // namespace ckpt::reliability
