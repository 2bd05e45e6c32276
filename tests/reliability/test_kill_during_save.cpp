// Kill during save: a child process saves a checkpoint over the previous one and is SIGKILLed
// at a random moment of the save. After every kill the file under the checkpoint's name is a
// whole checkpoint (the previous one, or the new one if the save had committed), it loads and
// verifies, nothing else is visible, and leftover temporaries go with the next save or
// `ckpt gc`. For every writable format in the registry. CI size by default; scripts/soak.sh sets
// CKPT_RELIABILITY_KILLS and CKPT_RELIABILITY_MIB for the long run.
#include "common.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::reliability;

namespace {

using Clock = std::chrono::steady_clock;

struct Child {
  pid_t pid = -1;
  int status = 0;
};

// Forks a child that writes `doc` to `path` and exits 0; returns once the child is about to
// start writing, so the caller's clock measures the save alone.
Child start_save(const Document& doc, const fs::path& path, const Format& format) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  Child c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::close(fds[0]);
    char go = 'g';
    if (::write(fds[1], &go, 1) != 1) ::_exit(4);
    try {
      write_document(doc, path, format);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "save failed: %s\n", e.what());
      ::_exit(3);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  char go = 0;
  if (::read(fds[0], &go, 1) != 1) go = 0;
  ::close(fds[0]);
  return c;
}

void finish(Child& c) { ::waitpid(c.pid, &c.status, 0); }

class KillDuringSave : public ::testing::TestWithParam<std::string> {};

TEST_P(KillDuringSave, PreviousCheckpointSurvivesEveryKill) {
  const std::string name = GetParam();
  const Format format = Registry::global().get(name);
  const uint64_t kills = env_u64("CKPT_RELIABILITY_KILLS", 6);
  const uint64_t mib = env_u64("CKPT_RELIABILITY_MIB", 4);
  const unsigned seed = static_cast<unsigned>(env_u64("CKPT_RELIABILITY_SEED", std::random_device{}()));
  std::printf("[kill] %s: %llu kills of %llu MiB saves, seed %u\n", name.c_str(),
              static_cast<unsigned long long>(kills), static_cast<unsigned long long>(mib), seed);
  std::mt19937_64 rng(seed);
  TempDir tmp("kill-" + param_name(name));
  const fs::path path = tmp.path / file_name(format.info());
  const Sample base = make_sample(format.info(), mib << 20, 0);
  auto generation = [&](int64_t g) {
    Document d = with_generation(base.doc, g);
    if (base.has_integrity) add_integrity(d);  // what ckpt::save does before writing
    return d;
  };

  // The first save is not killed: it is the "previous" checkpoint, and it times a save.
  auto t0 = Clock::now();
  {
    Child c = start_save(generation(1), path, format);
    finish(c);
    ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) << "an unkilled save failed";
  }
  const double save_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  // Loads the file under the checkpoint's name and checks it is whole; returns its generation.
  auto check_visible = [&](const std::string& when) -> int64_t {
    auto visible = visible_files(tmp.path);
    EXPECT_EQ(visible.size(), 1u) << when << ": something besides the checkpoint is visible";
    try {
      LoadOptions lo;
      lo.format = name;
      lo.verify = base.has_integrity;
      lo.map = false;
      Document d = read_document(path, lo);
      std::string diff = compare_data(d, base);
      EXPECT_TRUE(diff.empty()) << when << ": " << diff;
      return generation_of(d);
    } catch (const std::exception& e) {
      ADD_FAILURE() << when << ": the checkpoint does not load: " << e.what();
      return -1;
    }
  };

  int64_t previous = 1;
  uint64_t mid_save = 0, committed = 0, temps_left = 0;
  std::uniform_real_distribution<double> when(0.0, 1.25 * save_seconds);
  for (uint64_t k = 0; k < kills; ++k) {
    const int64_t g = previous + 1;
    Document next = generation(g);
    Child c = start_save(next, path, format);
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
    ::kill(c.pid, SIGKILL);
    finish(c);
    const std::string label = "kill " + std::to_string(k + 1);
    if (WIFEXITED(c.status)) {
      ASSERT_EQ(WEXITSTATUS(c.status), 0) << label << ": the save failed on its own";
    } else {
      ASSERT_TRUE(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGKILL) << label;
    }
    const int64_t got = check_visible(label);
    ASSERT_TRUE(got == previous || got == g) << label << ": generation " << got << ", expected " << previous
                                             << " or " << g;
    if (got == g) {
      ++committed;
      previous = g;
    } else {
      ++mid_save;
    }
    temps_left += temporaries(tmp.path).empty() ? 0 : 1;
  }

  // A save that runs to the end leaves no temporary, its own or the killed saves'.
  {
    Child c = start_save(generation(previous + 1), path, format);
    finish(c);
    ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    previous += 1;
    EXPECT_EQ(check_visible("after a completed save"), previous);
    EXPECT_TRUE(temporaries(tmp.path).empty()) << "the next save did not remove the killed saves' temporaries";
  }

  // A killed save's temporary is removed by `ckpt gc`, which leaves the checkpoint alone.
  bool left = false;
  for (int attempt = 0; attempt < 40 && !left; ++attempt) {
    Child c = start_save(generation(previous + 1), path, format);
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng) * 0.8));
    ::kill(c.pid, SIGKILL);
    finish(c);
    int64_t got = check_visible("before gc");
    if (got == previous + 1) previous = got;
    left = !temporaries(tmp.path).empty();
  }
  ASSERT_TRUE(left) << "no kill left a temporary to collect";
  auto gc = run_command(std::string(CKPT_CLI) + " gc " + tmp.path.string());
  EXPECT_EQ(gc.code, 0) << gc.out;
  EXPECT_NE(gc.out.find("removed 1 temporary"), std::string::npos) << gc.out;
  EXPECT_TRUE(temporaries(tmp.path).empty()) << gc.out;
  EXPECT_EQ(check_visible("after gc"), previous);

  std::printf("[kill] %s: %llu kills, %llu mid-save (previous checkpoint intact), %llu after the commit "
              "(new checkpoint intact), %llu left a temporary; 0 damaged; save %.3f s\n",
              name.c_str(), static_cast<unsigned long long>(kills), static_cast<unsigned long long>(mid_save),
              static_cast<unsigned long long>(committed), static_cast<unsigned long long>(temps_left), save_seconds);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, KillDuringSave, ::testing::ValuesIn(writable_formats()),
                         [](const auto& info) { return param_name(info.param); });

}  // namespace
