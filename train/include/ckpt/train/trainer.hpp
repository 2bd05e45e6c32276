// Training on Fashion-MNIST with oneDNN, checkpointing through the manager, resuming exactly:
// an interrupted run continued from its newest good checkpoint ends bit-identical to an
// uninterrupted one (same threads, same config).
#pragma once

#include <ckpt/checkpoint.hpp>
#include <ckpt/train/config.hpp>
#include <ckpt/train/data.hpp>
#include <ckpt/train/model.hpp>

#include <functional>
#include <memory>
#include <optional>

namespace ckpt::train {

struct EpochReport {
  int64_t epoch = 0;  // 1-based, as printed
  int64_t epochs = 0;
  double lr = 0;
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;
  double samples_per_second = 0;
  std::string saved;  // the checkpoint written at this epoch's end, if any
};

struct TrainCallbacks {
  std::function<void(int64_t done, int64_t total)> on_batch;  // samples within the epoch
  std::function<void(const EpochReport&)> on_epoch;
  std::function<void(const std::string&)> on_message;  // resume decisions, skipped files
};

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  int64_t samples = 0;
};

// Loss and accuracy of `model` over `data`, in eval mode.
Evaluation evaluate(Model& model, const Dataset& data, int64_t batch_size, const std::string& loss = "cross_entropy");

// Rebuilds a model from a checkpoint alone (model/spec, then model/state, strictly). Every
// parameter the spec names is checked against model/state (present, same shape, a floating
// dtype) before the model is built: FormatError naming each one that is not, with nothing
// allocated for a spec that names sizes the file does not hold.
std::unique_ptr<Model> model_from_checkpoint(const Checkpoint& c);

class Communicator;

class Trainer {
 public:
  // Data-parallel on MPI (docs/scaling.md) when the config says "distributed": {"engine":
  // "mpi"} or mpirun started the process: MPI is initialised here and rank 0's initial
  // parameters are broadcast.
  Trainer(TrainConfig config, const Registry& registry);
  ~Trainer();
  // Resumes as the config says, trains to the last epoch, and returns the final checkpoint.
  // Data-parallel, every rank returns it, and only rank 0 writes checkpoints and calls the
  // callbacks.
  std::filesystem::path run(const TrainCallbacks& callbacks = {});
  Model& model() { return *model_; }
  const TrainConfig& config() const { return config_; }
  // 0 and 1 for a single-process run.
  int rank() const;
  int world_size() const;

 private:
  struct State;
  Checkpoint snapshot(const State& s, bool owned) const;
  // Throws UsageError, naming `from`, when the checkpoint's seed, batch size or threads differ
  // from the config's: any of them changes the run's arithmetic. Returns the world size the
  // checkpoint was made with (1 when it records none). `own_rows`: c's optimizer state is this
  // rank's ZeRO-1 rows alone (read from a sharded folder), not whole tensors.
  int64_t restore(const Checkpoint& c, const std::filesystem::path& from, State& s, bool own_rows);
  // Data-parallel: rank 0's parameters, optimizer state and position, on every rank; under
  // ZeRO-1 (distributed.zero) not the optimizer state, of which each rank holds its own rows.
  void broadcast_state(State& s);

  TrainConfig config_;
  const Registry& registry_;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<Model> model_;
};

}  // namespace ckpt::train
