// The checkpoint manager: saves on the trainer's schedule into dir/step-000000123.<ext> (or the
// folder dir/step-000000123/ of a sharded checkpoint, which the trainer's ranks write), keeps
// the last K and the best N by a metric, finds the newest checkpoint that verifies, and can
// save on a background thread.
#pragma once

#include <ckpt/checkpoint.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/train/config.hpp>

#include <condition_variable>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace ckpt::train {

namespace fs = std::filesystem;

struct SavedCheckpoint {
  int64_t step;
  fs::path path;
};

class CheckpointManager {
 public:
  CheckpointManager(CheckpointConfig config, const Registry& registry);
  ~CheckpointManager();

  fs::path path_for(int64_t step) const;
  // Complete checkpoints in the folder, oldest first: files of the backend's extension and
  // sharded folders holding their index. Temporary files and staging folders never appear here.
  std::vector<SavedCheckpoint> list() const;
  // Saves atomically, then applies retention. With background on, `c` must own its tensors
  // (the caller clones) and this returns once the previous save has finished.
  void save(Checkpoint c, int64_t step);
  // A checkpoint of `step` written at path_for(step) by others (a sharded save, which every rank
  // takes part in): notes its metric and applies retention, as save() does after writing.
  void saved(const Checkpoint& c, int64_t step);
  // Waits for a background save and rethrows its error, if any.
  void wait();
  // The newest checkpoint that loads and verifies; broken ones are reported through `warn`.
  std::optional<fs::path> latest_good(const std::function<void(const std::string&)>& warn = {}) const;
  // The checkpoint with the best keep_best metric, if the config names one and any has it.
  std::optional<fs::path> best();
  // Removes temporary files left by interrupted saves; returns how many.
  size_t remove_temporaries() const;

 private:
  void save_now(const Checkpoint& c, int64_t step);
  void apply_retention(int64_t newest_step);
  std::optional<double> metric_of(const fs::path& p);

  CheckpointConfig config_;
  Format format_;
  std::map<fs::path, std::optional<double>> metric_cache_;
  // One save in flight at most.
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::pair<Checkpoint, int64_t>> pending_;
  bool busy_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

// Every tensor of `g` replaced by an owned copy (for handing a snapshot to another thread).
Group clone_tensors(const Group& g);

}  // namespace ckpt::train
