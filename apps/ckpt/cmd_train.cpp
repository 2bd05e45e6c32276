#include "commands.hpp"
#include "progress.hpp"
#include "train_registry.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/train/trainer.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

namespace ckpt::cli {

Runner add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model on Fashion-MNIST as a JSON config says, checkpointing and resuming");
  static std::string config_path;
  cmd->add_option("CONFIG", config_path, "training config (docs/training-config.md)")->required();
  return [] {
    // The "registry" section is the CLI's (train_registry.hpp); the trainer gets the rest, and
    // every checkpoint keeps the whole text.
    std::ifstream in(config_path);
    if (!in) throw IoError("cannot read training config '" + config_path + "'");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string rest;
    auto registration = TrainRegistration::take(text, config_path, rest);
    auto config = train::TrainConfig::parse(rest, config_path, {}, Registry::global());
    config.source = text;
    train::Trainer trainer(std::move(config), Registry::global());
    // Data-parallel (docs/scaling.md), only rank 0 registers, prints and saves.
    const bool primary = trainer.rank() == 0;
    if (!primary) registration.reset();
    if (registration) registration->open(trainer.config());
    std::unique_ptr<ProgressBar> bar;
    train::TrainCallbacks cb;
    cb.on_message = [&](const std::string& m) {
      std::fprintf(stderr, "ckpt train: %s\n", m.c_str());
      if (registration) registration->on_message(m);
    };
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
      if (registration) registration->on_epoch(r);
    };
    auto final_path = trainer.run(cb);
    if (registration) registration->finish(final_path);
    if (primary) std::printf("final checkpoint: %s\n", final_path.string().c_str());
    return kOk;
  };
}

}  // namespace ckpt::cli
