// What the tests share: a scratch folder removed at the end, and running a tool with its output
// captured.
#pragma once

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <sys/wait.h>
#include <unistd.h>

namespace ckpt_test {

// A scratch folder, <base>/ckpt-<tag>-<pid>-<random>, removed with all it holds at the end. The
// pid and random number keep parallel test processes (ctest -j) apart.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "test") : TempDir(std::filesystem::temp_directory_path(), tag) {}
  TempDir(const std::filesystem::path& base, const std::string& tag) {
    path = base / ("ckpt-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  // A folder that will not go is left behind: a throw here would end the whole test program.
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

// Runs `command` with stderr joined to stdout into `out`; its exit status, -1 when it died.
inline int run(const std::string& command, std::string& out) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  out.clear();
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// How many of ckpt's temporaries (names holding ".ckpt-tmp-": a save in progress or one a kill
// left) are in `dir`; 0 when there is no such folder.
inline size_t temporaries_in(const std::filesystem::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().find(".ckpt-tmp-") != std::string::npos) ++n;
  return n;
}

}  // namespace ckpt_test
