// The training configuration (docs/training-config.md): a JSON file validated up front, with
// errors that name the bad key.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/options.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace ckpt {
class Registry;
}

namespace ckpt::train {

struct KeepBest {
  std::string metric{};      // e.g. "test_accuracy"; empty: keep no best
  std::string mode = "max";  // "max" or "min"
  int64_t n = 0;
};

struct CheckpointConfig {
  std::string backend = "msgpack";  // any format the registry knows
  std::filesystem::path dir = "checkpoints";
  int64_t every_n_epochs = 1;  // 0: never at epoch ends
  int64_t every_n_steps = 0;   // 0: never mid-epoch
  int64_t keep_last = 3;       // 0: keep all
  KeepBest keep_best{};
  std::string resume = "auto";  // "auto" | "none" | a checkpoint path
  bool background = false;      // save on a writer thread (one save in flight at most)
  // A folder step-000000123/ of one shard per rank and an index (docs/sharded.md), every rank
  // writing its part, in place of one file written by rank 0.
  bool sharded = false;
  bool verify_on_resume = true;
  Options options{};  // format options, e.g. {"compression", "gzip"}
};

struct TrainConfig {
  Group model_spec;     // model/spec of the schema
  Group optimizer;      // @type and hyper-parameters
  Group schedule;       // @type and its parameters; empty: constant
  std::filesystem::path data_dir = "/usr/share/datasets/fashion-mnist";
  int64_t train_limit = 0;  // 0: all 60000
  int64_t test_limit = 0;   // 0: all 10000
  int64_t epochs = 1;
  int64_t batch_size = 64;
  uint64_t seed = 0;
  int threads = 1;
  std::string loss = "cross_entropy";  // or "mse" (against one-hot targets)
  CheckpointConfig checkpoint;
  // "distributed": {"engine": "mpi"} (docs/scaling.md): data-parallel on MPI. Empty: only when
  // started by mpirun (a run without it stays single-process, as before).
  std::string distributed_engine;
  // "distributed": {"zero": 1}: each rank keeps and updates the optimizer state of its rows of
  // every parameter only (ZeRO stage 1, docs/scaling.md); 0, the default, replicates it.
  int zero = 0;
  std::string source;  // the config's own text, kept in every checkpoint

  // Relative paths in the file are taken relative to `base_dir` (the config's folder).
  static TrainConfig parse(const std::string& json_text, const std::string& source_name,
                           const std::filesystem::path& base_dir, const Registry& registry);
  static TrainConfig load(const std::filesystem::path& path, const Registry& registry);
};

}  // namespace ckpt::train
