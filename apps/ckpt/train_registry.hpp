// The training config's "registry" section (docs/training-config.md): `ckpt train` registers
// checkpoints in the model registry as the trainer saves them, with their metrics. It lives
// in the CLI, beside the trainer rather than in it, so that libckpt_train does not depend on
// the registry's databases.
#pragma once

#include <ckpt/train/trainer.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace ckpt::model_registry {
class ModelRegistry;
}

namespace ckpt::cli {

class TrainRegistration {
 public:
  enum class When { best, every, last };

  // Takes the "registry" section out of the config text at `config_path` (validated: UsageError
  // naming CONFIG: registry.KEY); nullopt when there is none. `rest` gets the config without it,
  // for TrainConfig::parse.
  static std::optional<TrainRegistration> take(const std::string& text, const std::string& config_path, std::string& rest);

  ~TrainRegistration();
  TrainRegistration(TrainRegistration&&) noexcept;
  TrainRegistration& operator=(TrainRegistration&&) = delete;

  // Opens (creating) the registry; called once the config is known to be valid.
  void open(const train::TrainConfig& config);
  // The trainer's messages: "resumed from FILE" becomes every version's parent.
  void on_message(const std::string& message);
  // An epoch's end; `dir` is the checkpoint folder.
  void on_epoch(const train::EpochReport& report);
  // After the run: "last" registers the final checkpoint.
  void finish(const std::filesystem::path& final_checkpoint);

 private:
  TrainRegistration() = default;
  void register_file(const std::filesystem::path& file, bool last);

  std::string uri_, name_, alias_;
  When when_ = When::best;
  std::string metric_ = "test_accuracy";
  bool maximize_ = true;
  std::optional<double> best_;
  std::string parent_, run_start_;
  std::filesystem::path dir_;
  std::string config_path_;
  std::unique_ptr<model_registry::ModelRegistry> registry_;
};

}  // namespace ckpt::cli
