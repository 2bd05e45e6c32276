// `ckpt gc DIR` and the sweep every save makes: a temporary whose writer is alive (it holds
// the lock) is kept, even while that writer is stopped; one whose writer died is removed; no
// other file is touched.
#include "common.hpp"

#include <ckpt/integrity.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::reliability;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// Holds the lock a writer holds on its temporary (docs/reliability.md): an open-file-
// description write lock on the whole file.
struct LockedTemporary {
  int fd = -1;
  explicit LockedTemporary(const fs::path& p) {
    fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    EXPECT_EQ(::fcntl(fd, F_OFD_SETLK, &fl), 0);
    EXPECT_EQ(::write(fd, "partial", 7), 7);
  }
  ~LockedTemporary() { ::close(fd); }
};

TEST(Gc, RemovesDeadWritersTemporariesAndKeepsEverythingElse) {
  TempDir tmp("gc");
  const fs::path d = tmp.path;
  write_file(d / "model.json", "{}");
  write_file(d / ".hidden", "not ours");
  write_file(d / ".model.json.ckpt-tmp-dead00000000", "left by a killed save");
  fs::create_directory(d / ".dir.ckpt-tmp-000000000000");
  fs::create_symlink(d / "model.json", d / ".link.ckpt-tmp-000000000000");
  LockedTemporary live(d / ".model.json.ckpt-tmp-live00000000");

  auto dry = run_command(cli("gc --dry-run " + d.string()));
  EXPECT_EQ(dry.code, 0) << dry.out;
  EXPECT_THAT(dry.out, HasSubstr("would remove " + (d / ".model.json.ckpt-tmp-dead00000000").string()));
  EXPECT_TRUE(fs::exists(d / ".model.json.ckpt-tmp-dead00000000"));

  auto young = run_command(cli("gc --min-age 3600 " + d.string()));
  EXPECT_THAT(young.out, HasSubstr("younger than the minimum age"));
  EXPECT_TRUE(fs::exists(d / ".model.json.ckpt-tmp-dead00000000"));

  auto r = run_command(cli("gc " + d.string()));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("removed " + (d / ".model.json.ckpt-tmp-dead00000000").string() + " (21 bytes)"));
  EXPECT_THAT(r.out, HasSubstr("a live process is writing it"));
  EXPECT_THAT(r.out, HasSubstr("removed 1 temporary (21 bytes), kept 3"));
  EXPECT_FALSE(fs::exists(d / ".model.json.ckpt-tmp-dead00000000"));
  EXPECT_TRUE(fs::exists(d / ".model.json.ckpt-tmp-live00000000"));
  EXPECT_TRUE(fs::exists(d / "model.json"));
  EXPECT_TRUE(fs::exists(d / ".hidden"));
  EXPECT_TRUE(fs::is_symlink(d / ".link.ckpt-tmp-000000000000"));
  EXPECT_TRUE(fs::is_directory(d / ".dir.ckpt-tmp-000000000000"));

  EXPECT_EQ(run_command(cli("gc " + (d / "missing").string())).code, 2);
}

TEST(Gc, RecursiveLooksInSubFolders) {
  TempDir tmp("gcr");
  fs::create_directories(tmp.path / "run1");
  write_file(tmp.path / "run1" / ".a.json.ckpt-tmp-000000000001", "x");
  EXPECT_THAT(run_command(cli("gc " + tmp.path.string())).out, HasSubstr("removed 0 temporaries"));
  EXPECT_THAT(run_command(cli("gc -r " + tmp.path.string())).out, HasSubstr("removed 1 temporary"));
  EXPECT_FALSE(fs::exists(tmp.path / "run1" / ".a.json.ckpt-tmp-000000000001"));
}

TEST(Gc, EverySaveSweepsItsFolderButSparesLiveWriters) {
  TempDir tmp("sweep");
  write_file(tmp.path / ".old.json.ckpt-tmp-dead00000000", "left by a killed save");
  LockedTemporary live(tmp.path / ".other.json.ckpt-tmp-live00000000");
  Sample s = make_sample(Registry::global().get("json").info(), 1024, 1);
  write_document(s.doc, tmp.path / "new.json");
  EXPECT_FALSE(fs::exists(tmp.path / ".old.json.ckpt-tmp-dead00000000"));
  EXPECT_TRUE(fs::exists(tmp.path / ".other.json.ckpt-tmp-live00000000"));
}

// The whole protocol with a real writer: stopped mid-save it still holds its lock, so gc keeps
// its temporary; killed, its lock is gone, so gc removes it. For every writable format.
class GcWithRealWriter : public ::testing::TestWithParam<std::string> {};

TEST_P(GcWithRealWriter, StoppedWriterIsKeptKilledWriterIsCollected) {
  const Format format = Registry::global().get(GetParam());
  TempDir tmp("gcw-" + param_name(GetParam()));
  const fs::path path = tmp.path / file_name(format.info());
  Sample s = make_sample(format.info(), 64 << 20, 1);
  bool caught = false;
  for (int attempt = 0; attempt < 10 && !caught; ++attempt) {
    pid_t pid = ::fork();
    if (pid == 0) {
      try {
        write_document(s.doc, path, format);
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    // Stop the writer as soon as its temporary has data in it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto t = temporaries(tmp.path);
      std::error_code ec;
      if (!t.empty() && fs::file_size(t[0], ec) > 0 && !ec) {
        ::kill(pid, SIGSTOP);
        caught = fs::exists(t[0]);
        break;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (pid < 0) continue;
    if (caught) {
      auto kept = run_command(cli("gc " + tmp.path.string()));
      EXPECT_THAT(kept.out, HasSubstr("a live process is writing it")) << kept.out;
      EXPECT_THAT(kept.out, HasSubstr("removed 0 temporaries"));
      EXPECT_EQ(temporaries(tmp.path).size(), 1u);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    if (caught) {
      auto removed = run_command(cli("gc " + tmp.path.string()));
      EXPECT_THAT(removed.out, HasSubstr("removed 1 temporary")) << removed.out;
      EXPECT_TRUE(temporaries(tmp.path).empty());
    }
  }
  EXPECT_TRUE(caught) << "never caught the writer mid-save";
}

INSTANTIATE_TEST_SUITE_P(AllFormats, GcWithRealWriter, ::testing::ValuesIn(writable_formats()),
                         [](const auto& info) { return param_name(info.param); });

}  // namespace
