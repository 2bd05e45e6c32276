// Data-parallel training on Open MPI (docs/scaling.md): `mpirun -np N ckpt train` gives the
// parameters of a one-process run with the same global batch, a repeated run at the same N is
// bit-identical, a rank killed mid-epoch stops the whole job within seconds, and `resume: auto`
// continues from the last complete checkpoint, at the same N exactly.
#include "sanitizers.hpp"
#include "scratch.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/train/config.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;
namespace fs = std::filesystem;
using ckpt_test::TempDir;

namespace {

// Tests run as root in CI: Open MPI refuses that unless both variables are set, here only in
// the child's environment. vader's single-copy (CMA) needs ptrace rights containers often
// lack; the test needs none of its speed.
// Open MPI's components leak at MPI_Finalize from modules it has already unloaded, frames no
// suppression can name: leak checking is off in every process that may start MPI (the ranks,
// and a process without mpirun whose config asks for MPI, a world of one), ASan's other checks
// stay on.
const std::string kSanitizerEnv =
#ifdef CKPT_TEST_ASAN
    "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0 ";
#else
    "";
#endif
const std::string kMpiEnv = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + kSanitizerEnv;
const char* const kMpiArgs[] = {"--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader",
                                "--mca", "btl_vader_single_copy_mechanism", "none"};

// `wrapper` runs mpirun, e.g. "timeout 60 ".
std::string mpirun_command(int ranks, const fs::path& cfg, const std::string& wrapper = "") {
  std::string cmd = kMpiEnv + wrapper + CKPT_MPIEXEC;
  for (const char* a : kMpiArgs) cmd += std::string(" ") + a;
  return cmd + " -np " + std::to_string(ranks) + " " + CKPT_CLI + " train " + cfg.string();
}

// A small MLP on 290 Fashion-MNIST samples: 10 batches of 32, the last of 2 (so at 3 ranks one
// rank's slice of it is empty), SGD with momentum so there is optimizer state to keep equal.
std::string config_text(const fs::path& dir, int64_t train_limit, int64_t batch, int64_t epochs, const std::string& extra = "") {
  return R"({"model": {"type": "mlp", "hidden": [32]}, "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    "data": {"train_limit": )" + std::to_string(train_limit) + R"(, "test_limit": 100}, "epochs": )" +
         std::to_string(epochs) + R"(, "batch_size": )" + std::to_string(batch) + R"(, "seed": 5, "threads": 1,
    "checkpoint": {"dir": ")" + dir.string() + R"(", "keep_last": 0)" + extra + "}}";
}

fs::path write_config(const fs::path& dir, const std::string& name, const std::string& text) {
  fs::path p = dir / name;
  std::ofstream(p) << text;
  return p;
}

// The "final checkpoint: PATH" line `ckpt train` prints.
fs::path final_checkpoint(const std::string& out) {
  auto at = out.find("final checkpoint: ");
  if (at == std::string::npos) return {};
  auto end = out.find('\n', at);
  return out.substr(at + 18, end - at - 18);
}

fs::path run_training(int ranks, const fs::path& cfg, std::string* log = nullptr) {
  std::string out;
  // A hung job is killed rather than left to ctest's timeout.
  int rc = ckpt_test::run(ranks ? mpirun_command(ranks, cfg, "timeout -s KILL 300 ")
                                : kSanitizerEnv + CKPT_CLI + " train " + cfg.string(), out);
  if (log) *log = out;
  EXPECT_EQ(rc, 0) << out;
  fs::path p = final_checkpoint(out);
  EXPECT_FALSE(p.empty()) << out;
  EXPECT_EQ(out.find("final checkpoint: "), out.rfind("final checkpoint: ")) << "only rank 0 reports: " << out;
  return p;
}

struct Compared {
  size_t tensors = 0;
  bool bit_equal = true;
  double worst = 0;  // the largest max|a - b| / max|b| of any tensor
};

// Every tensor of model/state and optimizer, a against b.
Compared compare(const fs::path& a, const fs::path& b) {
  Document da = read_document(a), db = read_document(b);
  Compared c;
  for (const char* root : {"model/state", "optimizer"}) {
    const Group* ga = da.find_group_path(root);
    const Group* gb = db.find_group_path(root);
    EXPECT_TRUE(ga && gb) << root;
    if (!ga || !gb) continue;
    EXPECT_EQ(ga->tensor_count(), gb->tensor_count()) << root;
    ga->for_each_tensor([&](const std::string& path, const Tensor& ta) {
      const Tensor* tb = gb->find_tensor_path(path);
      EXPECT_NE(tb, nullptr) << root << "/" << path;
      if (!tb) return;
      ++c.tensors;
      c.bit_equal = c.bit_equal && ta.bit_equal(*tb);
      auto x = ta.data<float>(), y = tb->data<float>();
      double diff = 0, scale = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        diff = std::max(diff, std::fabs(static_cast<double>(x[i]) - y[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(y[i])));
      }
      if (scale > 0) c.worst = std::max(c.worst, diff / scale);
    });
  }
  EXPECT_GE(c.tensors, 4u);  // fc1, fc2 weight and bias, and their momentum buffers
  return c;
}

int64_t recorded_world_size(const fs::path& p) {
  Document d = read_document(p);
  const Value* v = d.find_group_path("trainer") ? d.find_group_path("trainer")->attribute("world_size") : nullptr;
  return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : -1;
}

}  // namespace

TEST(DistributedConfig, EngineIsValidated) {
  const std::string base = config_text("/tmp/unused", 100, 10, 1);
  auto with = [&](const std::string& section) {
    return base.substr(0, base.size() - 1) + ", \"distributed\": " + section + "}";
  };
  EXPECT_EQ(train::TrainConfig::parse(with(R"({"engine": "mpi"})"), "d.json", {}, Registry::global()).distributed_engine, "mpi");
  try {
    train::TrainConfig::parse(with(R"({"engine": "nccl"})"), "d.json", {}, Registry::global());
    ADD_FAILURE() << "an unknown engine was accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "d.json: distributed.engine: unknown engine 'nccl' (known: mpi)");
  }
  EXPECT_THROW(train::TrainConfig::parse(with(R"({"engine": "mpi", "ranks": 2})"), "d.json", {}, Registry::global()),
               UsageError);
  EXPECT_THROW(train::TrainConfig::parse(with(R"({})"), "d.json", {}, Registry::global()), UsageError);
}

TEST(Distributed, OneTwoAndThreeRanksGiveTheParametersOfOneProcess) {
  TempDir tmp("ddp");
  fs::path plain = run_training(0, write_config(tmp.path, "plain.json", config_text(tmp / "plain", 290, 32, 1)));
  EXPECT_EQ(recorded_world_size(plain), 1);
  for (int n : {1, 2, 3}) {
    SCOPED_TRACE("ranks " + std::to_string(n));
    fs::path dir = tmp / ("n" + std::to_string(n));
    fs::path got = run_training(n, write_config(tmp.path, "n" + std::to_string(n) + ".json", config_text(dir, 290, 32, 1)));
    EXPECT_EQ(recorded_world_size(got), n);
    Compared c = compare(got, plain);
    std::printf("%d rank(s) against one process: %zu tensors, bit-identical %s, worst relative difference %.3g\n", n,
                c.tensors, c.bit_equal ? "yes" : "no", c.worst);
    EXPECT_LE(c.worst, 1e-5);
    // A world of one trains exactly as a plain run.
    if (n == 1) {
      EXPECT_TRUE(c.bit_equal);
    }
  }
  // The same with the "distributed" key and no mpirun: MPI as a world of one.
  fs::path asked = run_training(0, write_config(tmp.path, "asked.json", config_text(tmp / "asked", 290, 32, 1, R"(},
    "distributed": {"engine": "mpi")")));
  EXPECT_TRUE(compare(asked, plain).bit_equal);
}

TEST(Distributed, ARepeatedTwoRankRunIsBitIdentical) {
  TempDir tmp("ddp");
  fs::path a = run_training(2, write_config(tmp.path, "a.json", config_text(tmp / "a", 290, 32, 2)));
  fs::path b = run_training(2, write_config(tmp.path, "b.json", config_text(tmp / "b", 290, 32, 2)));
  EXPECT_TRUE(compare(a, b).bit_equal);
}

namespace {

std::string environ_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The processes whose environment holds `mark` (and `also`, when given).
std::vector<pid_t> marked(const std::string& mark, const std::string& also = "") {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string env = environ_of(std::stoi(name));
    std::string z(1, '\0');
    if ((z + env).find(z + mark + z) != std::string::npos && (also.empty() || (z + env).find(z + also + z) != std::string::npos))
      out.push_back(std::stoi(name));
  }
  return out;
}

bool has_step_file(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind("step-", 0) == 0) return true;
  return false;
}

}  // namespace

TEST(Distributed, AKilledRankStopsTheJobAndResumeContinuesExactly) {
  TempDir tmp("ddp");
  // 6000 samples in batches of 20, a checkpoint every 20 steps: long enough to kill mid-epoch.
  auto text = [&](const fs::path& dir) { return config_text(dir, 6000, 20, 1, R"(, "every_n_steps": 20)"); };
  fs::path ref = run_training(2, write_config(tmp.path, "ref.json", text(tmp / "ref")));

  const fs::path dir = tmp / "killed";
  fs::create_directories(dir);
  const fs::path cfg = write_config(tmp.path, "killed.json", text(dir));
  const fs::path log = tmp / "killed.log";
  const std::string mark = "CKPT_TEST_DDP_RUN=" + tmp.path.string();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    ::putenv(const_cast<char*>(mark.c_str()));
#ifdef CKPT_TEST_ASAN
    ::setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0", 1);
#endif
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<const char*> argv = {CKPT_MPIEXEC};
    for (const char* a : kMpiArgs) argv.push_back(a);
    for (const char* a : {"-np", "2", CKPT_CLI, "train"}) argv.push_back(a);
    argv.push_back(cfg.c_str());
    argv.push_back(nullptr);
    ::execv(CKPT_MPIEXEC, const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
  // Whatever happens below, no process of this job outlives the test.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0 && ::kill(-pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
    }
  } reaper{pid};

  // The first mid-epoch checkpoint is complete: kill rank 1 with SIGKILL.
  int status = 0;
  bool exited = false;
  while (!has_step_file(dir) && !(exited = ::waitpid(pid, &status, WNOHANG) == pid))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_FALSE(exited) << "the run ended before its first checkpoint:\n" << std::ifstream(log).rdbuf();
  std::vector<pid_t> rank1 = marked(mark, "OMPI_COMM_WORLD_RANK=1");
  ASSERT_EQ(rank1.size(), 1u);
  ASSERT_EQ(::kill(rank1[0], SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();

  // mpirun and rank 0 end, non-zero, within seconds: bounded wait, never a hang.
  while (!exited && std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(30)) {
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_TRUE(exited) << "mpirun still runs 30 s after rank 1 was killed";
  reaper.pid = 0;
  std::printf("mpirun exited %.2f s after rank 1 was killed\n", secs);
  EXPECT_LT(secs, 10.0);
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
  std::string text_log = [&] {
    std::ifstream in(log);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  EXPECT_NE(text_log.find("signal 9"), std::string::npos) << text_log;
  EXPECT_EQ(text_log.find("final checkpoint:"), std::string::npos) << text_log;
  for (int i = 0; i < 100 && !marked(mark).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(marked(mark).empty()) << "a rank outlived mpirun";

  // resume: auto continues from the newest complete checkpoint and ends as the run never killed.
  std::string out;
  fs::path resumed = run_training(2, cfg, &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + dir.string()), std::string::npos) << out;
  EXPECT_TRUE(compare(resumed, ref).bit_equal);
}

TEST(Distributed, ResumeAtAnotherWorldSizeContinuesTheSameBatches) {
  TempDir tmp("ddp");
  // Two epochs at 2 ranks, against one epoch at 2 ranks continued for the second at 3.
  fs::path ref = run_training(2, write_config(tmp.path, "ref.json", config_text(tmp / "ref", 290, 32, 2)));
  run_training(2, write_config(tmp.path, "first.json", config_text(tmp / "run", 290, 32, 1)));
  std::string out;
  fs::path resumed = run_training(3, write_config(tmp.path, "second.json", config_text(tmp / "run", 290, 32, 2)), &out);
  EXPECT_NE(out.find("the checkpoint was made by 2 rank(s), this run has 3"), std::string::npos) << out;
  EXPECT_EQ(recorded_world_size(resumed), 3);
  Compared c = compare(resumed, ref);
  std::printf("resumed at 3 ranks against 2 throughout: worst relative difference %.3g\n", c.worst);
  EXPECT_LE(c.worst, 1e-5);
}

TEST(Distributed, AnErrorOnRankZeroAloneStopsTheJob) {
  TempDir tmp("ddp");
  // Only rank 0 creates the checkpoint folder, so only it fails, while rank 1 already waits for
  // its broadcast; rank 0's error exit must end the job, not leave rank 1 waiting.
  std::ofstream(tmp / "file") << "not a folder";
  fs::path cfg = write_config(tmp.path, "bad.json", config_text(tmp / "file" / "run", 290, 32, 1));
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  int rc = ckpt_test::run(mpirun_command(2, cfg, "timeout -s KILL 60 "), out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(rc, 137) << "timeout had to kill mpirun: " << out;
  EXPECT_LT(secs, 30.0);
  EXPECT_NE(out.find("cannot create checkpoint folder '" + (tmp / "file" / "run").string() + "'"), std::string::npos) << out;
}

// Sharded checkpoints from the trainer (docs/scaling.md): every rank writes its shard of each
// save into a folder step-000000123/ that rank 0 commits.

namespace {

std::string sharded_config(const fs::path& dir, int64_t train_limit, int64_t batch, int64_t epochs, const std::string& extra = "") {
  return config_text(dir, train_limit, batch, epochs, R"(, "sharded": true)" + extra);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The folder's index: every shard's file exists, is non-empty when the index gives it chunks,
// and holds exactly those chunks. Returns how many chunks each shard holds.
std::vector<size_t> check_shards(const fs::path& folder, size_t world) {
  std::vector<size_t> chunks(world, 0);
  EXPECT_TRUE(fs::is_directory(folder)) << folder;
  EXPECT_TRUE(fs::is_regular_file(folder / "ckpt.sharded.json")) << folder;
  nlohmann::json index = nlohmann::json::parse(slurp(folder / "ckpt.sharded.json"));
  EXPECT_EQ(index["world"].get<size_t>(), world);
  EXPECT_EQ(index["shards"].size(), world);
  if (index["shards"].size() != world) return chunks;
  for (const auto& t : index["tensors"])
    for (const auto& c : t["chunks"]) ++chunks.at(c["shard"].get<size_t>());
  for (size_t i = 0; i < world; ++i) {
    const auto& shard = index["shards"][i];
    const std::string file = shard.is_object() ? shard["file"].get<std::string>() : shard.get<std::string>();
    const fs::path p = folder / file;
    EXPECT_TRUE(fs::is_regular_file(p)) << p;
    if (!fs::is_regular_file(p)) continue;
    if (chunks[i] > 0) {
      EXPECT_GT(fs::file_size(p), 0u) << p;
      EXPECT_EQ(read_document(p).tensor_count(), chunks[i]) << p;
    }
  }
  return chunks;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(DistributedConfig, ShardedIsValidated) {
  auto parse = [](const std::string& extra) {
    return train::TrainConfig::parse(config_text("/tmp/unused", 100, 10, 1, extra), "s.json", {}, Registry::global());
  };
  EXPECT_FALSE(parse("").checkpoint.sharded);
  EXPECT_TRUE(parse(R"(, "sharded": true)").checkpoint.sharded);
  try {
    parse(R"(, "sharded": "yes")");
    ADD_FAILURE() << "a sharded that is no boolean was accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "s.json: checkpoint.sharded: expected true or false");
  }
  try {
    parse(R"(, "sharded": true, "background": true)");
    ADD_FAILURE() << "sharded with background was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("s.json: checkpoint: sharded and background together"), std::string::npos) << e.what();
  }
}

TEST(DistributedSharded, OneTwoAndThreeRanksWriteFoldersThatVerifyAndEqualAnUnshardedRun) {
  TempDir tmp("ddp");
  // 0: a plain run without mpirun, a world of one without MPI.
  for (int n : {0, 1, 2, 3}) {
    SCOPED_TRACE("ranks " + std::to_string(n));
    const std::string tag = "n" + std::to_string(n);
    const int world = std::max(n, 1);
    fs::path plain = run_training(n, write_config(tmp.path, tag + "-plain.json", config_text(tmp / (tag + "-plain"), 290, 32, 2)));
    fs::path got = run_training(n, write_config(tmp.path, tag + ".json", sharded_config(tmp / tag, 290, 32, 2)));
    EXPECT_EQ(got, tmp / tag / "step-000000020");
    // One folder per epoch, complete, and nothing else left beside them.
    EXPECT_EQ(names_in(tmp / tag), (std::vector<std::string>{"step-000000010", "step-000000020"}));
    for (const auto& name : names_in(tmp / tag)) {
      std::vector<size_t> chunks = check_shards(tmp / tag / name, static_cast<size_t>(world));
      // Every tensor is replicated and the planner spreads them by bytes, largest first: with
      // the parameters and their momentum buffers, every rank up to three writes some.
      for (size_t i = 0; i < chunks.size(); ++i) EXPECT_GT(chunks[i], 0u) << name << " shard " << i;
      std::string out;
      EXPECT_EQ(ckpt_test::run(std::string(CKPT_CLI) + " verify " + (tmp / tag / name).string(), out), 0) << out;
    }
    EXPECT_EQ(recorded_world_size(got), world);
    Compared c = compare(got, plain);
    EXPECT_TRUE(c.bit_equal) << "worst relative difference " << c.worst;
  }
}

TEST(DistributedSharded, KeepLastRemovesOldFolders) {
  TempDir tmp("ddp");
  // Steps 3, 6 and 9 mid-epoch and 10 at its end: the last two stay.
  std::string text = sharded_config(tmp / "k", 290, 32, 1, R"(, "every_n_steps": 3)");
  const std::string keep_all = R"("keep_last": 0)";
  text.replace(text.find(keep_all), keep_all.size(), R"("keep_last": 2)");
  run_training(2, write_config(tmp.path, "k.json", text));
  EXPECT_EQ(names_in(tmp / "k"), (std::vector<std::string>{"step-000000009", "step-000000010"}));
  for (const auto& name : names_in(tmp / "k")) check_shards(tmp / "k" / name, 2);
}

TEST(DistributedSharded, KeepBestKeepsTheBestFolderBesideTheLast) {
  TempDir tmp("ddp");
  // The highest training loss is the first epoch's: kept as "best" beside the last folder.
  std::string text = sharded_config(tmp / "b", 290, 32, 3, R"(, "keep_best": {"metric": "train_loss", "mode": "max", "n": 1})");
  const std::string keep_all = R"("keep_last": 0)";
  text.replace(text.find(keep_all), keep_all.size(), R"("keep_last": 1)");
  std::string out;
  run_training(2, write_config(tmp.path, "b.json", text), &out);
  EXPECT_EQ(names_in(tmp / "b"), (std::vector<std::string>{"step-000000010", "step-000000030"}));
  EXPECT_NE(out.find("best checkpoint: " + (tmp / "b" / "step-000000010").string()), std::string::npos) << out;
}

namespace {

// The staging folder of a sharded save in progress (".step-000000040.ckpt-tmp-shards"), if any.
std::optional<fs::path> staging_in(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".step-", 0) == 0 && name.ends_with("shards")) return e.path();
  }
  return std::nullopt;
}



// `mpirun -np 2 ckpt train cfg` in a process group of its own, bounded by a timeout, its output
// in `log` and `mark` in every rank's environment (to find the ranks).
pid_t launch_two_ranks(const fs::path& cfg, const fs::path& log, const std::string& mark) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  ::putenv(const_cast<char*>(mark.c_str()));
#ifdef CKPT_TEST_ASAN
  ::setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:verify_asan_link_order=0", 1);
#endif
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(out, 1);
  ::dup2(out, 2);
  std::vector<const char*> argv = {"/usr/bin/timeout", "-s", "KILL", "300", CKPT_MPIEXEC};
  for (const char* a : kMpiArgs) argv.push_back(a);
  for (const char* a : {"-np", "2", CKPT_CLI, "train"}) argv.push_back(a);
  argv.push_back(cfg.c_str());
  argv.push_back(nullptr);
  ::execv(argv[0], const_cast<char* const*>(argv.data()));
  ::_exit(127);
}

// Whatever a test does, no process of the job outlives it.
struct Reaper {
  pid_t pid;
  ~Reaper() {
    if (pid > 0 && ::kill(-pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
  }
};

// Waits up to 30 s for the job to end after a kill; false if it still runs.
bool ends_soon(pid_t pid, int& status) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30)) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST(DistributedSharded, RankZeroKilledMidSaveResumesAtTheSameAndAnotherWorldSize) {
  TempDir tmp("ddp");
  // 600 samples in batches of 20, a sharded checkpoint at every step: many saves to catch. The
  // kill waits for step 20's, so that at most ten steps follow at another world size, whose
  // rounding differs (as in ResumeAtAnotherWorldSizeContinuesTheSameBatches).
  auto text = [&](const fs::path& dir) { return sharded_config(dir, 600, 20, 1, R"(, "every_n_steps": 1)"); };
  fs::path ref = run_training(2, write_config(tmp.path, "ref.json", text(tmp / "ref")));

  const fs::path dir = tmp / "killed";
  fs::create_directories(dir);
  const fs::path cfg = write_config(tmp.path, "killed.json", text(dir));
  const fs::path log = tmp / "killed.log";
  const std::string mark = "CKPT_TEST_DDP_RUN=" + tmp.path.string();
  const pid_t pid = launch_two_ranks(cfg, log, mark);
  ASSERT_GE(pid, 0);
  Reaper reaper{pid};

  // Once step 20's checkpoint is complete, rank 0 is stopped the moment a later save's staging folder
  // appears; if that save committed in the meantime it goes on, else it is killed mid-save.
  int status = 0;
  bool exited = false, killed = false;
  pid_t rank0 = 0;
  int attempts = 0;
  while (!killed && !(exited = ::waitpid(pid, &status, WNOHANG) == pid)) {
    if (!rank0) {
      auto found = marked(mark, "OMPI_COMM_WORLD_RANK=0");
      if (found.size() == 1) rank0 = found[0];
      continue;
    }
    if (!fs::exists(dir / "step-000000020" / "ckpt.sharded.json") || !staging_in(dir)) continue;
    ++attempts;
    ::kill(rank0, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (staging_in(dir)) {
      ASSERT_EQ(::kill(rank0, SIGKILL), 0);
      killed = true;
    } else {
      ::kill(rank0, SIGCONT);
    }
  }
  ASSERT_TRUE(killed) << "the run ended before a save could be caught in progress (" << attempts << " tries):\n" << slurp(log);
  std::printf("rank 0 killed mid-save after %d tries\n", attempts);
  const auto killed_at = std::chrono::steady_clock::now();
  while (!exited && std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(30)) {
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(exited) << "mpirun still runs 30 s after rank 0 was killed";
  reaper.pid = 0;
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
  EXPECT_EQ(slurp(log).find("final checkpoint:"), std::string::npos) << slurp(log);
  for (int i = 0; i < 100 && !marked(mark).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(marked(mark).empty()) << "a rank outlived mpirun";

  // The kill left the save's staging folder; every folder beside it is complete.
  const std::optional<fs::path> staging = staging_in(dir);
  ASSERT_TRUE(staging) << "no staging folder left after rank 0 was killed mid-save";
  for (const auto& name : names_in(dir))
    if (name.rfind("step-", 0) == 0) {
      SCOPED_TRACE(name);
      check_shards(dir / name, 2);
    }
  std::string newest;
  for (const auto& name : names_in(dir))
    if (name.rfind("step-", 0) == 0) newest = name;
  ASSERT_FALSE(newest.empty());

  // ckpt gc removes it (its lock died with rank 0).
  std::string gc_out;
  EXPECT_EQ(ckpt_test::run(std::string(CKPT_CLI) + " gc " + dir.string(), gc_out), 0) << gc_out;
  EXPECT_NE(gc_out.find("removed " + staging->string()), std::string::npos) << gc_out;
  EXPECT_FALSE(fs::exists(*staging)) << gc_out;

  // A copy of the folder resumes at 3 ranks, the folder itself at 2.
  const fs::path dir3 = tmp / "killed3";
  fs::copy(dir, dir3, fs::copy_options::recursive);
  const fs::path cfg3 = write_config(tmp.path, "killed3.json", text(dir3));

  std::string out;
  fs::path resumed = run_training(2, cfg, &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + (dir / newest).string() + " "), std::string::npos) << out;
  EXPECT_TRUE(compare(resumed, ref).bit_equal);

  fs::path resumed3 = run_training(3, cfg3, &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + (dir3 / newest).string() + " "), std::string::npos) << out;
  EXPECT_NE(out.find("the checkpoint was made by 2 rank(s), this run has 3"), std::string::npos) << out;
  EXPECT_EQ(recorded_world_size(resumed3), 3);
  check_shards(resumed3, 3);
  Compared c = compare(resumed3, ref);
  std::printf("killed at 2 ranks, resumed at 3, against 2 throughout: worst relative difference %.3g\n", c.worst);
  EXPECT_LE(c.worst, 1e-5);
}

TEST(DistributedSharded, RankOneKilledAfterASaveResumesAtTheSameWorldSizeAndAtOne) {
  TempDir tmp("ddp");
  // A checkpoint every 5 steps of 30; rank 1 is killed once step 20's folder is complete.
  auto text = [&](const fs::path& dir) { return sharded_config(dir, 600, 20, 1, R"(, "every_n_steps": 5)"); };
  fs::path ref = run_training(2, write_config(tmp.path, "ref.json", text(tmp / "ref")));

  const fs::path dir = tmp / "killed";
  fs::create_directories(dir);
  const fs::path cfg = write_config(tmp.path, "killed.json", text(dir));
  const fs::path log = tmp / "killed.log";
  const std::string mark = "CKPT_TEST_DDP_RUN=" + tmp.path.string();
  const pid_t pid = launch_two_ranks(cfg, log, mark);
  ASSERT_GE(pid, 0);
  Reaper reaper{pid};
  int status = 0;
  bool exited = false;
  while (!fs::exists(dir / "step-000000020" / "ckpt.sharded.json") && !(exited = ::waitpid(pid, &status, WNOHANG) == pid))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_FALSE(exited) << "the run ended before step 20's checkpoint:\n" << slurp(log);
  std::vector<pid_t> rank1 = marked(mark, "OMPI_COMM_WORLD_RANK=1");
  ASSERT_EQ(rank1.size(), 1u);
  ASSERT_EQ(::kill(rank1[0], SIGKILL), 0);
  ASSERT_TRUE(ends_soon(pid, status)) << "mpirun still runs 30 s after rank 1 was killed";
  reaper.pid = 0;
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
  EXPECT_EQ(slurp(log).find("final checkpoint:"), std::string::npos) << slurp(log);
  for (int i = 0; i < 100 && !marked(mark).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(marked(mark).empty()) << "a rank outlived mpirun";

  std::string newest;
  for (const auto& name : names_in(dir))
    if (name.rfind("step-", 0) == 0) {
      check_shards(dir / name, 2);
      newest = name;
    }
  ASSERT_GE(newest, std::string("step-000000020"));
  // A staging folder, if the kill caught a later save, is the gc's.
  std::string gc_out;
  EXPECT_EQ(ckpt_test::run(std::string(CKPT_CLI) + " gc " + dir.string(), gc_out), 0) << gc_out;
  EXPECT_FALSE(staging_in(dir)) << gc_out;

  const fs::path dir1 = tmp / "killed1";
  fs::copy(dir, dir1, fs::copy_options::recursive);
  std::string out;
  fs::path resumed = run_training(2, cfg, &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + (dir / newest).string() + " "), std::string::npos) << out;
  EXPECT_TRUE(compare(resumed, ref).bit_equal);

  // One process without mpirun: a world of one reads the 2-shard folder, writes 1-shard ones.
  fs::path resumed1 = run_training(0, write_config(tmp.path, "killed1.json", text(dir1)), &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + (dir1 / newest).string() + " "), std::string::npos) << out;
  EXPECT_NE(out.find("the checkpoint was made by 2 rank(s), this run has 1"), std::string::npos) << out;
  check_shards(resumed1, 1);
  Compared c = compare(resumed1, ref);
  std::printf("killed at 2 ranks, resumed at 1, against 2 throughout: worst relative difference %.3g\n", c.worst);
  EXPECT_LE(c.worst, 1e-5);
}

// ZeRO stage 1 (docs/scaling.md): "distributed": {"zero": 1} keeps each rank's rows of the
// optimizer state only; parameters are all-gathered after each rank's update.

namespace {

// `extra` for config_text: the distributed section with zero, after the checkpoint's keys.
std::string zero_extra(const std::string& checkpoint_keys = "") {
  return checkpoint_keys + R"(}, "distributed": {"engine": "mpi", "zero": 1)";
}

// Adam (two state buffers) on an MLP whose first layer has 2 rows: at 3 ranks one rank has
// none of fc1's rows.
std::string adam_narrow(std::string text) {
  const std::string sgd = R"({"type": "sgd", "lr": 0.05, "momentum": 0.9})", hidden = R"("hidden": [32])";
  text.replace(text.find(sgd), sgd.size(), R"({"type": "adam", "lr": 0.01})");
  text.replace(text.find(hidden), hidden.size(), R"("hidden": [2])");
  return text;
}

std::pair<int64_t, int64_t> rows_of(int64_t rows, int64_t rank, int64_t world) {
  const int64_t base = rows / world, extra = rows % world;
  const int64_t lo = rank * base + std::min(rank, extra);
  return {lo, lo + base + (rank < extra ? 1 : 0)};
}

}  // namespace

TEST(DistributedConfig, ZeroIsValidated) {
  auto parse = [](const std::string& zero) {
    return train::TrainConfig::parse(config_text("/tmp/unused", 100, 10, 1, R"(}, "distributed": {"engine": "mpi", "zero": )" + zero),
                                     "z.json", {}, Registry::global());
  };
  EXPECT_EQ(parse("0").zero, 0);
  EXPECT_EQ(parse("1").zero, 1);
  EXPECT_EQ(train::TrainConfig::parse(config_text("/tmp/unused", 100, 10, 1), "z.json", {}, Registry::global()).zero, 0);
  for (const char* bad : {"2", "-1", "\"1\"", "true", "1.0"}) {
    try {
      parse(bad);
      ADD_FAILURE() << "zero " << bad << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string("z.json: distributed.zero: expected 0 (replicated optimizer state) or 1 (sharded across ranks, "
                            "ZeRO stage 1), got ") + bad);
    }
  }
}

TEST(DistributedZero, TwoAndThreeRanksAreBitIdenticalToReplicatedOptimizerState) {
  TempDir tmp("zero");
  struct Case {
    int ranks;
    bool adam;
  };
  for (Case k : {Case{2, false}, Case{3, false}, Case{3, true}}) {
    const std::string tag = "n" + std::to_string(k.ranks) + (k.adam ? "-adam" : "-sgd");
    SCOPED_TRACE(tag);
    auto text = [&](const std::string& name, const std::string& extra) {
      std::string t = config_text(tmp / name, 290, 32, 1, extra);
      return write_config(tmp.path, name + ".json", k.adam ? adam_narrow(t) : t);
    };
    const auto t0 = std::chrono::steady_clock::now();
    fs::path replicated = run_training(k.ranks, text(tag + "-replicated", ""));
    const auto t1 = std::chrono::steady_clock::now();
    // Single-file saves: rank 0 gathers the state (MPI_Gatherv) and writes it whole.
    fs::path zero = run_training(k.ranks, text(tag + "-zero", zero_extra()));
    const auto t2 = std::chrono::steady_clock::now();
    Compared c = compare(zero, replicated);
    std::printf("%s: zero against replicated: %zu tensors, bit-identical %s (replicated %.2f s, zero %.2f s)\n", tag.c_str(),
                c.tensors, c.bit_equal ? "yes" : "no", std::chrono::duration<double>(t1 - t0).count(),
                std::chrono::duration<double>(t2 - t1).count());
    EXPECT_TRUE(c.bit_equal) << "worst relative difference " << c.worst;
    EXPECT_EQ(c.tensors, k.adam ? 12u : 8u);  // 4 parameters, each with its 1 or 2 state buffers
  }
}

TEST(DistributedZero, ShardedSavesHoldEachRanksRowsAndResumeAtAnyWorldSizeWithOrWithout) {
  TempDir tmp("zero");
  const std::string sharded = R"(, "sharded": true)";
  // The reference: two epochs at 2 ranks with ZeRO-1, sharded saves.
  fs::path ref = run_training(2, write_config(tmp.path, "ref.json", config_text(tmp / "ref", 290, 32, 2, zero_extra(sharded))));
  // The first epoch with and without ZeRO-1: the same document on disk, bit for bit.
  fs::path first = run_training(2, write_config(tmp.path, "run.json", config_text(tmp / "run", 290, 32, 1, zero_extra(sharded))));
  fs::path plain = run_training(2, write_config(tmp.path, "plain.json", config_text(tmp / "plain", 290, 32, 1, sharded)));
  ASSERT_EQ(first, tmp / "run" / "step-000000010");
  check_shards(first, 2);
  LoadOptions verify;
  verify.verify = true;  // the whole tensors' hashes, the state's chained along the ranks
  Document zero_doc = read_document(first, verify), plain_doc = read_document(plain, verify);
  size_t state_tensors = 0;
  zero_doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
    const Tensor* o = plain_doc.find_tensor_path(path);
    ASSERT_NE(o, nullptr) << path;
    EXPECT_TRUE(t.bit_equal(*o)) << path;
    state_tensors += path.rfind("optimizer/state/", 0) == 0;
  });
  EXPECT_EQ(state_tensors, 4u);
  std::string out;
  EXPECT_EQ(ckpt_test::run(std::string(CKPT_CLI) + " verify " + first.string(), out), 0) << out;

  // Each shard holds its own rows of every state tensor and nothing of another rank's.
  nlohmann::json index = nlohmann::json::parse(slurp(first / "ckpt.sharded.json"));
  size_t checked = 0;
  for (const auto& t : index["tensors"]) {
    const std::string path = t["path"];
    if (path.rfind("optimizer/state/", 0) != 0) continue;
    const auto shape = t["shape"].get<std::vector<int64_t>>();
    ASSERT_EQ(t["chunks"].size(), 2u) << path;
    for (const auto& c : t["chunks"]) {
      const size_t shard = c["shard"];
      const auto [lo, hi] = rows_of(shape[0], static_cast<int64_t>(shard), 2);
      std::vector<int64_t> sizes = shape;
      sizes[0] = hi - lo;
      EXPECT_EQ(c["offsets"][0].get<int64_t>(), lo) << path << " shard " << shard;
      EXPECT_EQ(c["sizes"].get<std::vector<int64_t>>(), sizes) << path << " shard " << shard;
      // The shard file itself: the chunk holds exactly those rows of the whole tensor.
      const Document sd = read_document(first / index["shards"][shard]["file"].get<std::string>());
      const Tensor* held = sd.find_tensor_path(c["name"].get<std::string>());
      ASSERT_NE(held, nullptr) << path << " shard " << shard;
      EXPECT_EQ(held->shape(), Shape(sizes.begin(), sizes.end())) << path;
      const Tensor* whole = plain_doc.find_tensor_path(path);
      const size_t per_row = static_cast<size_t>(whole->numel() / static_cast<uint64_t>(shape[0]));
      auto want = whole->data<float>().subspan(static_cast<size_t>(lo) * per_row, static_cast<size_t>(hi - lo) * per_row);
      auto got = held->data<float>();
      EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end())) << path << " shard " << shard;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 8u);

  // The second epoch: at 3 ranks with ZeRO-1, and in one process without it.
  fs::copy(tmp / "run", tmp / "run3", fs::copy_options::recursive);
  fs::copy(tmp / "run", tmp / "run1", fs::copy_options::recursive);
  fs::path resumed3 =
      run_training(3, write_config(tmp.path, "run3.json", config_text(tmp / "run3", 290, 32, 2, zero_extra(sharded))), &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + (tmp / "run3" / "step-000000010").string() + " "), std::string::npos) << out;
  check_shards(resumed3, 3);
  Compared c3 = compare(resumed3, ref);
  fs::path resumed1 = run_training(0, write_config(tmp.path, "run1.json", config_text(tmp / "run1", 290, 32, 2, sharded)), &out);
  EXPECT_NE(out.find("the checkpoint was made by 2 rank(s), this run has 1"), std::string::npos) << out;
  Compared c1 = compare(resumed1, ref);
  // And a replicated single-file run continued at 3 ranks with ZeRO-1 (each rank keeps its rows).
  run_training(2, write_config(tmp.path, "file.json", config_text(tmp / "file", 290, 32, 1)));
  fs::path from_file = run_training(3, write_config(tmp.path, "file3.json", config_text(tmp / "file", 290, 32, 2, zero_extra())), &out);
  EXPECT_NE(out.find("ckpt train: resumed from " + (tmp / "file" / "step-000000010").string()), std::string::npos) << out;
  Compared cf = compare(from_file, ref);
  std::printf("zero sharded at 2, resumed at 3 with zero: worst relative difference %.3g; at 1 without: %.3g; "
              "a replicated file resumed at 3 with zero: %.3g\n", c3.worst, c1.worst, cf.worst);
  EXPECT_LE(c3.worst, 1e-5);
  EXPECT_LE(c1.worst, 1e-5);
  EXPECT_LE(cf.worst, 1e-5);
}

// A single-file (whole-tensor) checkpoint whose fc2.bias momentum was cut to [5] has, at 2 ranks,
// exactly each rank's rows' shape: before, both ranks took it as their rows under ZeRO-1 and the
// run went on with wrong moments; a whole-tensor load now needs the whole shape on every rank.
TEST(DistributedZero, AWholeFileStateOfTheRowsShapeIsRefused) {
  TempDir tmp("zero-cut");
  fs::path file = run_training(2, write_config(tmp.path, "one.json", config_text(tmp / "cut", 290, 32, 1)));
  ASSERT_FALSE(file.empty());
  Checkpoint c = ckpt::load(file);
  Group* st = c.optimizer.find_group("state") ? &c.optimizer.group("state") : nullptr;
  ASSERT_NE(st, nullptr);
  const Tensor* m = st->group("fc2.bias").find_tensor("momentum_buffer");
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->shape(), Shape({10}));
  Tensor cut = Tensor::empty(DType::f32, {5});
  std::copy_n(m->data<float>().begin(), 5, cut.mutable_data<float>().begin());
  st->group("fc2.bias").set_tensor("momentum_buffer", std::move(cut));
  ckpt::save(c, file);  // a consistent record: only the shape check can refuse it
  std::string out;
  const fs::path cfg = write_config(tmp.path, "two.json", config_text(tmp / "cut", 290, 32, 2, zero_extra()));
  EXPECT_NE(ckpt_test::run(mpirun_command(2, cfg, "timeout -s KILL 300 "), out), 0) << out;
  EXPECT_NE(out.find("optimizer/state/fc2.bias/momentum_buffer: f32 [5] does not match the parameter's f32 [10]"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("final checkpoint: "), std::string::npos) << out;
}
