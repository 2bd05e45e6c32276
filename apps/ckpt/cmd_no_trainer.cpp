// The trainer's commands in a build without libckpt_train (-DCKPT_BUILD_TRAINER=OFF): they stay
// in `ckpt --help` and accept any arguments, so whoever runs them learns why they do nothing
// rather than meeting an unknown-command error.
#include "commands.hpp"

#include <iostream>
#include <string>

namespace ckpt::cli {

namespace {
Runner unavailable(CLI::App& app, const std::string& name, const std::string& description) {
  auto* cmd = app.add_subcommand(name, description + " (not in this build)");
  cmd->allow_extras();
  return [name] {
    std::cerr << "ckpt: error: this build has no trainer (configured with -DCKPT_BUILD_TRAINER=OFF), so `ckpt "
              << name << "` is unavailable\n";
    return kBadInput;
  };
}
}  // namespace

Runner add_train(CLI::App& app) { return unavailable(app, "train", "Train a model on Fashion-MNIST"); }
Runner add_eval(CLI::App& app) { return unavailable(app, "eval", "Report a checkpoint's test accuracy"); }
Runner add_predict(CLI::App& app) { return unavailable(app, "predict", "Print a model's logits"); }
Runner add_serve(CLI::App& app) { return unavailable(app, "serve", "Serve models over HTTP"); }

}  // namespace ckpt::cli
