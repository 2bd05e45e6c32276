// The subcommands of `ckpt`. Each registers itself on the CLI11 app and returns its exit code
// through `run`: 0 success, 1 a finding (diff, verify), 2 bad usage or bad input.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace ckpt::cli {

enum Exit { kOk = 0, kFinding = 1, kBadInput = 2 };

using Runner = std::function<int()>;

Runner add_plugins(CLI::App& app);
Runner add_inspect(CLI::App& app);
Runner add_convert(CLI::App& app);
Runner add_diff(CLI::App& app);
Runner add_verify(CLI::App& app);
Runner add_train(CLI::App& app);
Runner add_eval(CLI::App& app);
Runner add_predict(CLI::App& app);
Runner add_gc(CLI::App& app);
Runner add_keygen(CLI::App& app);
Runner add_sign(CLI::App& app);
Runner add_registry(CLI::App& app);  // cmd_registry.cpp: the model registry
Runner add_view(CLI::App& app);      // cmd_view.cpp: the web page over files (docs/web-page.md)
Runner add_serve(CLI::App& app);     // cmd_serve.cpp: TensorFlow Serving's REST API (docs/serving.md)

}  // namespace ckpt::cli
