#include "commands.hpp"
#include "progress.hpp"

#include <ckpt/io.hpp>
#include <ckpt/train/trainer.hpp>

#include <cstdio>
#include <iostream>

namespace ckpt::cli {

Runner add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model on Fashion-MNIST as a JSON config says, checkpointing and resuming");
  static std::string config_path;
  cmd->add_option("CONFIG", config_path, "training config (docs/training-config.md)")->required();
  return [] {
    auto config = train::TrainConfig::load(config_path, Registry::global());
    train::Trainer trainer(std::move(config), Registry::global());
    std::unique_ptr<ProgressBar> bar;
    train::TrainCallbacks cb;
    cb.on_message = [](const std::string& m) { std::fprintf(stderr, "ckpt train: %s\n", m.c_str()); };
    cb.on_batch = [&](int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<ProgressBar>("epoch", Counting::samples);
      bar->update(static_cast<uint64_t>(done), static_cast<uint64_t>(total));
    };
    cb.on_epoch = [&](const train::EpochReport& r) {
      bar.reset();
      std::printf("epoch %lld/%lld  lr %.4g  loss %.4f  acc %.4f  test_loss %.4f  test_acc %.4f  %.0f samples/s%s%s\n",
                  static_cast<long long>(r.epoch), static_cast<long long>(r.epochs), r.lr, r.train_loss, r.train_accuracy,
                  r.test_loss, r.test_accuracy, r.samples_per_second, r.saved.empty() ? "" : "  saved ", r.saved.c_str());
      std::fflush(stdout);
    };
    auto final_path = trainer.run(cb);
    std::printf("final checkpoint: %s\n", final_path.string().c_str());
    return kOk;
  };
}

}  // namespace ckpt::cli
