// The checkpoint manager's retention and the exact-resume promise: a run killed with SIGKILL
// at random moments (also during saves) and resumed ends bit-identical to one never killed.
#include "scratch.hpp"

#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/train/manager.hpp>
#include <ckpt/train/trainer.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <random>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::train;
namespace fs = std::filesystem;

namespace {

using ckpt_test::TempDir;
using ckpt_test::temporaries_in;

Checkpoint with_metric(double acc) {
  Checkpoint c;
  c.model_state.add_tensor("w", Tensor::from<float>(DType::f32, {1}, {static_cast<float>(acc)}));
  c.trainer.group("metrics").set("test_accuracy", acc);
  return c;
}

std::string config_text(const fs::path& dir, const std::string& backend, int64_t epochs, bool background = false) {
  return R"({"model": {"type": "mlp", "hidden": [64, 32]}, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"type": "step", "step_size": 1, "gamma": 0.7},
    "data": {"train_limit": 4000, "test_limit": 500}, "epochs": )" +
         std::to_string(epochs) + R"(, "batch_size": 50, "seed": 3, "threads": 1,
    "checkpoint": {"backend": ")" + backend + R"(", "dir": ")" + dir.string() +
         R"(", "every_n_steps": 7, "keep_last": 2, "background": )" + (background ? "true" : "false") + "}}";
}

fs::path write_config(const fs::path& dir, const std::string& name, const std::string& text) {
  fs::path p = dir / name;
  std::ofstream(p) << text;
  return p;
}

const Tensor* state(const Document& d, const std::string& name) { return d.find_tensor_path("model/state/" + name); }

}  // namespace

TEST(Manager, KeepsTheLastKAndTheBestAndNeverAHalfWrittenFile) {
  TempDir tmp;
  CheckpointConfig cc;
  cc.backend = "msgpack";
  cc.dir = tmp.path;
  cc.keep_last = 2;
  cc.keep_best = {"test_accuracy", "max", 1};
  CheckpointManager m(cc, Registry::global());
  const std::vector<double> acc = {0.5, 0.9, 0.6, 0.7, 0.65};
  for (size_t i = 0; i < acc.size(); ++i) m.save(with_metric(acc[i]), static_cast<int64_t>(i + 1) * 100);
  std::vector<int64_t> steps;
  for (const auto& s : m.list()) steps.push_back(s.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{200, 400, 500}));  // best (0.9) and the last two
  EXPECT_EQ(m.path_for(500).filename(), "step-000000500.msgpack");

  // A temporary left by a killed save is invisible to list() and removed on request.
  std::ofstream(tmp.path / ".step-000000600.msgpack.ckpt-tmp-abc123") << "partial";
  EXPECT_EQ(m.list().size(), 3u);
  EXPECT_EQ(m.remove_temporaries(), 1u);

  // The newest file is damaged: resume picks the newest one that verifies.
  std::string bytes;
  {
    std::ifstream in(m.path_for(500), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() / 2] ^= 0x40;
  std::ofstream(m.path_for(500), std::ios::binary) << bytes;
  std::vector<std::string> warnings;
  auto good = m.latest_good([&](const std::string& w) { warnings.push_back(w); });
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, m.path_for(400));
  EXPECT_EQ(warnings.size(), 1u);
}

TEST(Resume, StoppingAndResumingInProcessIsBitIdentical) {
  TempDir tmp;
  auto full_cfg = TrainConfig::parse(config_text(tmp.path / "full", "msgpack", 3), "full.json", {}, Registry::global());
  fs::path full = Trainer(full_cfg, Registry::global()).run();
  // The same run in two parts: one epoch, then resumed to three.
  auto part1 = TrainConfig::parse(config_text(tmp.path / "parts", "json", 1), "p1.json", {}, Registry::global());
  Trainer(part1, Registry::global()).run();
  auto part2 = TrainConfig::parse(config_text(tmp.path / "parts", "json", 3), "p2.json", {}, Registry::global());
  fs::path resumed = Trainer(part2, Registry::global()).run();
  Document a = read_document(full), b = read_document(resumed);
  for (const auto& name : {"fc1.weight", "fc1.bias", "fc2.weight", "fc3.weight", "fc3.bias"}) {
    ASSERT_NE(state(a, name), nullptr) << name;
    EXPECT_TRUE(state(a, name)->bit_equal(*state(b, name))) << name;
  }
  EXPECT_TRUE(diff_documents(*a.find_group("optimizer"), *b.find_group("optimizer")).identical());
}

TEST(Resume, ACheckpointMadeWithAnotherThreadCountOrSeedIsRefused) {
  TempDir tmp;
  const fs::path dir = tmp.path / "run";
  Trainer(TrainConfig::parse(config_text(dir, "msgpack", 1), "one.json", {}, Registry::global()), Registry::global()).run();
  const fs::path saved = CheckpointManager({.backend = "msgpack", .dir = dir}, Registry::global()).list().back().path;
  auto refused = [&](const std::string& from, const std::string& to) {
    std::string text = config_text(dir, "msgpack", 2);
    auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    try {
      Trainer(TrainConfig::parse(text, "two.json", {}, Registry::global()), Registry::global()).run();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(resumed)");
  };
  std::string why = refused(R"("threads": 1)", R"("threads": 2)");
  EXPECT_NE(why.find(saved.string() + ": made with threads 1 (the config says 2)"), std::string::npos) << why;
  EXPECT_NE(why.find("checkpoint.resume"), std::string::npos) << why;
  why = refused(R"("seed": 3)", R"("seed": 4)");
  EXPECT_NE(why.find("made with seed 3 (the config says 4)"), std::string::npos) << why;
  // Nothing was overwritten by the refused runs.
  EXPECT_EQ(CheckpointManager({.backend = "msgpack", .dir = dir}, Registry::global()).list().back().path, saved);
}

namespace {

// A `ckpt train` child with stdout discarded and stderr (its resume messages) kept in `log`.
pid_t spawn_train(const fs::path& cfg, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, 1);
    ::dup2(err, 2);
    ::execl(CKPT_CLI, CKPT_CLI, "train", cfg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Waits until `count` saves have started in `dir` (each creates a ".ckpt-tmp-" temporary,
// seen through inotify) while `pid` runs. False if the child exited first; `status` is then set.
bool wait_for_save_starts(int inotify_fd, pid_t pid, int count, int& status) {
  int seen = 0;
  alignas(inotify_event) char buf[4096];
  for (;;) {
    pollfd p{inotify_fd, POLLIN, 0};
    if (::poll(&p, 1, 5) > 0) {
      ssize_t n = ::read(inotify_fd, buf, sizeof buf);
      for (ssize_t off = 0; off < n;) {
        auto* e = reinterpret_cast<inotify_event*>(buf + off);
        if (e->len && std::string(e->name).find(".ckpt-tmp-") != std::string::npos && ++seen >= count) return true;
        off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    } else if (::waitpid(pid, &status, WNOHANG) == pid) {
      return false;
    }
  }
}

// Drops the events of an earlier attempt, so the next one counts only its own saves.
void drain(int inotify_fd) {
  alignas(inotify_event) char buf[4096];
  while (::read(inotify_fd, buf, sizeof buf) > 0) {
  }
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The step a run reports resuming from ("resumed from PATH (epoch E, sample S, step N)"), or -1.
int64_t resumed_step(const std::string& log) {
  auto at = log.find("ckpt train: resumed from ");
  if (at == std::string::npos) return -1;
  auto s = log.find(", step ", at);
  return s == std::string::npos ? -1 : std::stoll(log.substr(s + 7));
}

}  // namespace

TEST(Resume, KilledAtRandomMomentsAndResumedEndsBitIdentical) {
  TempDir tmp;
  fs::path ref_cfg = write_config(tmp.path, "ref.json", config_text(tmp.path / "ref", "msgpack", 3));
  ASSERT_EQ(std::system((std::string(CKPT_CLI) + " train " + ref_cfg.string() + " > /dev/null 2>&1").c_str()), 0);
  auto ref_list = CheckpointManager({.backend = "msgpack", .dir = tmp.path / "ref"}, Registry::global()).list();
  ASSERT_FALSE(ref_list.empty());
  Document ref = read_document(ref_list.back().path);

  unsigned seed = std::random_device{}();
  std::printf("kill schedule seed %u\n", seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 3; ++trial) {
    fs::path dir = tmp.path / ("killed" + std::to_string(trial));
    fs::create_directories(dir);
    fs::path cfg = write_config(tmp.path, "k" + std::to_string(trial) + ".json", config_text(dir, "msgpack", 3, trial == 2));
    int inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(inotify_fd, 0);
    ASSERT_GE(::inotify_add_watch(inotify_fd, dir.c_str(), IN_CREATE), 0);

    // Kills alternate between the instant a save starts (aimed inside it) and a random moment
    // a little later; the aimed kind is repeated until one is seen to land inside a save.
    int kills = 0, kills_in_save = 0;
    bool previous_kill_in_save = false;
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 20) << "the run never finished";
      fs::path log = tmp.path / ("k" + std::to_string(trial) + "-" + std::to_string(attempt) + ".log");
      const bool kill_it = kills < 3 || (kills_in_save == 0 && kills < 10);
      drain(inotify_fd);
      pid_t pid = spawn_train(cfg, log);
      int status = 0;
      bool killed = false;
      if (kill_it) {
        // The first kill waits for a second save, so a complete checkpoint exists to resume from.
        std::uniform_int_distribution<int> nth(attempt == 0 ? 2 : 1, 3), late_us(0, 20000);
        const bool aimed = kills % 2 == 0 || kills >= 3;
        if (wait_for_save_starts(inotify_fd, pid, nth(rng), status)) {
          if (!aimed) std::this_thread::sleep_for(std::chrono::microseconds(late_us(rng)));
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          killed = WIFSIGNALED(status);
        }
      } else {
        ::waitpid(pid, &status, 0);
      }
      const std::string text = read_text(log);
      if (attempt == 0) {
        EXPECT_EQ(resumed_step(text), -1) << text;
      } else {
        // Every later run continues from a checkpoint some killed run saved, never from scratch.
        EXPECT_GT(resumed_step(text), 0) << "trial " << trial << " attempt " << attempt << ":\n" << text;
        if (previous_kill_in_save) {
          EXPECT_NE(text.find("temporary file(s) left by an interrupted save"), std::string::npos) << text;
        }
      }
      if (!killed) {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "ckpt train failed on attempt " << attempt << ":\n" << text;
        break;
      }
      ++kills;
      // The killed writer's temporary is still there: the kill landed inside a save.
      previous_kill_in_save = temporaries_in(dir) > 0;
      kills_in_save += previous_kill_in_save;
    }
    ::close(inotify_fd);
    std::printf("trial %d: %d kills, %d inside a save\n", trial, kills, kills_in_save);
    EXPECT_GE(kills, 3) << "trial " << trial << ": the run finished before the kills";
    EXPECT_GE(kills_in_save, 1) << "trial " << trial << ": no kill landed inside a save";

    auto list = CheckpointManager({.backend = "msgpack", .dir = dir}, Registry::global()).list();
    ASSERT_FALSE(list.empty());
    Document got = read_document(list.back().path, {.verify = true});
    EXPECT_EQ(list.back().step, ref_list.back().step);
    for (const auto& name : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"})
      EXPECT_TRUE(state(ref, name)->bit_equal(*state(got, name))) << "trial " << trial << " after " << kills << " kills: " << name;
    EXPECT_EQ(temporaries_in(dir), 0u);
  }
}
