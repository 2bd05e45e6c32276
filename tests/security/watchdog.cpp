#include "watchdog.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace ckpt::security {

std::string Outcome::describe() const {
  std::string s = timed_out ? "killed after the deadline"
                  : signal  ? "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")"
                            : "exit " + std::to_string(exit_code);
  char buf[96];
  std::snprintf(buf, sizeof buf, ", %.1f MiB peak, %.2f s", static_cast<double>(max_rss) / (1 << 20), seconds);
  return s + buf;
}

Outcome run_limited(const std::vector<std::string>& argv, const std::string& cwd,
                    const std::vector<std::pair<std::string, std::string>>& env, const Limits& limits) {
  Outcome o;
  char out_name[] = "/tmp/ckpt-security-out-XXXXXX";
  const int out = ::mkstemp(out_name);
  if (out < 0) {
    o.output = std::string("mkstemp: ") + std::strerror(errno);
    return o;
  }
  ::unlink(out_name);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    if (limits.address_space) {
      const rlimit as{limits.address_space, limits.address_space};
      ::setrlimit(RLIMIT_AS, &as);
    }
    const rlimit cpu{limits.cpu_seconds, limits.cpu_seconds};
    ::setrlimit(RLIMIT_CPU, &cpu);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  rusage ru{};
  for (;;) {
    const pid_t r = ::wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(limits.wall_seconds)) {
      ::kill(pid, SIGKILL);
      ::wait4(pid, &status, 0, &ru);
      o.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  o.max_rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  ::lseek(out, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out, buf, sizeof buf)) > 0 && o.output.size() < (1 << 20)) o.output.append(buf, static_cast<size_t>(n));
  ::close(out);
  return o;
}

}  // namespace ckpt::security
