// Runs a program in a child process under limits, the way the security suite must run ckpt on
// hostile input: address space capped (RLIMIT_AS, so a runaway allocation fails rather than
// taking the machine), CPU time capped (RLIMIT_CPU), and a wall-clock deadline after which the
// child is killed. Reports how it ended, what it printed and its peak resident memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt::security {

struct Limits {
  uint64_t address_space = uint64_t{8} << 30;  // 0: none (sanitizers reserve terabytes)
  unsigned cpu_seconds = 60;
  unsigned wall_seconds = 120;
};

struct Outcome {
  int exit_code = -1;   // -1 when it did not exit
  int signal = 0;       // the signal that ended it, 0 if none
  bool timed_out = false;
  uint64_t max_rss = 0;  // bytes
  double seconds = 0;
  std::string output;    // stdout and stderr
  std::string describe() const;
};

Outcome run_limited(const std::vector<std::string>& argv, const std::string& cwd,
                    const std::vector<std::pair<std::string, std::string>>& env, const Limits& limits);

}  // namespace ckpt::security
