// Disk full and I/O errors: a save that runs out of room (the file-size limit lowered with
// RLIMIT_FSIZE, or a small tmpfs in a private mount namespace) fails with a typed ckpt error
// naming the file, leaves the previous checkpoint intact and no temporary behind, and the
// process keeps working. For every writable format in the registry.
#include "common.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <typeinfo>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::reliability;

namespace {

// Runs `body` in a child process; returns its exit code (or -signal) and what it wrote to
// `report` (a pipe), so a child's findings reach the parent's assertions.
struct ChildResult {
  int code = 0;
  std::string report;
};

template <class F>
ChildResult in_child(F&& body) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    int code = body(report);
    size_t done = 0;
    while (done < report.size()) {
      ssize_t n = ::write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return r;
}

std::string error_kind(const std::exception& e) {
  if (dynamic_cast<const IoError*>(&e)) return "IoError";
  if (dynamic_cast<const LimitError*>(&e)) return "LimitError";
  if (dynamic_cast<const FormatError*>(&e)) return "FormatError";
  if (dynamic_cast<const PluginError*>(&e)) return "PluginError";
  if (dynamic_cast<const Error*>(&e)) return "ckpt::Error";
  return std::string("not a ckpt error: ") + typeid(e).name();
}

// The checks after a failed save, done where the failure happened (child or parent).
std::string check_intact(const fs::path& dir, const fs::path& path, const std::string& format, const Sample& base,
                         int64_t generation) {
  std::string problems;
  auto visible = visible_files(dir);
  if (visible.size() != 1 || visible[0] != path) problems += "visible files besides the checkpoint; ";
  if (!temporaries(dir).empty()) problems += "a temporary was left behind; ";
  try {
    LoadOptions lo;
    lo.format = format;
    lo.verify = base.has_integrity;
    lo.map = false;
    Document d = read_document(path, lo);
    problems += compare_data(d, base);
    if (generation_of(d) != generation) problems += "the previous checkpoint changed; ";
  } catch (const std::exception& e) {
    problems += std::string("the previous checkpoint does not load: ") + e.what() + "; ";
  }
  return problems;
}

Document generation(const Sample& base, int64_t g) {
  Document d = with_generation(base.doc, g);
  if (base.has_integrity) add_integrity(d);
  return d;
}

class DiskFull : public ::testing::TestWithParam<std::string> {};

TEST_P(DiskFull, FileSizeLimitFailsTheSaveCleanly) {
  const std::string name = GetParam();
  const Format format = Registry::global().get(name);
  TempDir tmp("fsize-" + param_name(name));
  const fs::path path = tmp.path / file_name(format.info());
  const Sample base = make_sample(format.info(), 256 << 10, 0);
  write_document(generation(base, 1), path, format);
  const uint64_t size = fs::file_size(path);
  const Document next = generation(base, 2);

  for (uint64_t limit : {uint64_t{0}, uint64_t{1}, uint64_t{4096}, size / 2, size - 1}) {
    ChildResult r = in_child([&](std::string& report) {
      struct rlimit rl {limit, limit};
      ::setrlimit(RLIMIT_FSIZE, &rl);
      // Without this the kernel kills the writer; with it, write() fails with EFBIG.
      ::signal(SIGXFSZ, SIG_IGN);
      try {
        write_document(next, path, format);
        report = "the save succeeded past the limit";
        return 1;
      } catch (const std::exception& e) {
        report = error_kind(e) + "\n" + e.what();
        return 0;
      }
    });
    const std::string label = name + " with the file size limited to " + std::to_string(limit) + " bytes";
    ASSERT_EQ(r.code, 0) << label << ": " << r.report;
    std::string kind = r.report.substr(0, r.report.find('\n'));
    std::string message = r.report.substr(r.report.find('\n') + 1);
    EXPECT_EQ(kind.find("not a ckpt error"), std::string::npos) << label << ": " << r.report;
    EXPECT_NE(message.find(file_name(format.info())), std::string::npos) << label << ": the error names no file: " << message;
    if (limit == size / 2) std::printf("[fsize] %s: %s: %s\n", name.c_str(), kind.c_str(), message.c_str());
    std::string problems = check_intact(tmp.path, path, name, base, 1);
    EXPECT_TRUE(problems.empty()) << label << ": " << problems;
  }
  // And nothing is stuck: the same save without a limit works.
  write_document(next, path, format);
  EXPECT_TRUE(check_intact(tmp.path, path, name, base, 2).empty());
}

// A tmpfs mounted in a private mount namespace of a child process: the real ENOSPC of a full
// file system, visible to no other process and gone when the child exits.
TEST_P(DiskFull, FullFileSystemFailsTheSaveCleanly) {
  const std::string name = GetParam();
  const Format format = Registry::global().get(name);
  TempDir tmp("enospc-" + param_name(name));
  const Sample base = make_sample(format.info(), 512 << 10, 0);
  // The file's size in this format, measured outside the small file system.
  write_document(generation(base, 1), tmp.path / "probe", format);
  const uint64_t size = fs::file_size(tmp.path / "probe");
  fs::remove(tmp.path / "probe");
  const fs::path mnt = tmp.path / "small";
  fs::create_directories(mnt);
  const fs::path path = mnt / file_name(format.info());

  ChildResult r = in_child([&](std::string& report) {
    if (::unshare(CLONE_NEWNS) != 0) {
      report = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
      return 77;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      report = std::string("making mounts private: ") + std::strerror(errno);
      return 77;
    }
    // Room for one checkpoint and a half: the next save runs out half way.
    std::string opts = "size=" + std::to_string((size * 3 / 2 + 4095) / 4096 * 4096);
    if (::mount("ckpt-enospc", mnt.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      report = std::string("mounting a tmpfs: ") + std::strerror(errno);
      return 77;
    }
    try {
      write_document(generation(base, 1), path, format);
    } catch (const std::exception& e) {
      report = std::string("the first save, which fits, failed: ") + e.what();
      return 1;
    }
    try {
      write_document(generation(base, 2), path, format);
      report = "the second save succeeded on a full file system";
      return 1;
    } catch (const std::exception& e) {
      report = error_kind(e) + "\n" + e.what() + "\n";
    }
    std::string problems = check_intact(mnt, path, name, base, 1);
    if (!problems.empty()) {
      report += problems;
      return 1;
    }
    // The process carries on: a small save fits and reads back.
    try {
      Document small;
      small.add_tensor("x", Tensor::from<float>(DType::f32, {2}, {1, 2}));
      write_document(small, mnt / ("small" + file_name(format.info()).substr(5)), format);
      LoadOptions lo;
      lo.format = name;
      read_document(mnt / ("small" + file_name(format.info()).substr(5)), lo);
    } catch (const std::exception& e) {
      report += std::string("a small save after the failure failed: ") + e.what();
      return 1;
    }
    return 0;
  });
  if (r.code == 77) GTEST_SKIP() << "this machine allows no private tmpfs: " << r.report;
  ASSERT_EQ(r.code, 0) << r.report;
  std::string kind = r.report.substr(0, r.report.find('\n'));
  EXPECT_EQ(kind.find("not a ckpt error"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find(file_name(format.info())), std::string::npos) << "the error names no file: " << r.report;
  std::printf("[enospc] %s: %s", name.c_str(), r.report.c_str());
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DiskFull, ::testing::ValuesIn(writable_formats()),
                         [](const auto& info) { return param_name(info.param); });

}  // namespace
