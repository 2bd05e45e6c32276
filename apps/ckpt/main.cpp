#include "commands.hpp"
#include "text.hpp"

#include <ckpt/errors.hpp>

#include <iostream>
#include <new>

int main(int argc, char** argv) {
  CLI::App app{"ckpt: save, load, convert, inspect and verify machine-learning checkpoints"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ckpt 0.1.0");
  std::vector<std::pair<CLI::App*, ckpt::cli::Runner>> commands;
  auto add = [&](auto f) {
    size_t before = app.get_subcommands({}).size();
    auto runner = f(app);
    commands.emplace_back(app.get_subcommands({})[before], runner);
  };
  add(ckpt::cli::add_plugins);
  add(ckpt::cli::add_inspect);
  add(ckpt::cli::add_convert);
  add(ckpt::cli::add_diff);
  add(ckpt::cli::add_verify);
  add(ckpt::cli::add_train);
  add(ckpt::cli::add_eval);
  add(ckpt::cli::add_predict);
  add(ckpt::cli::add_gc);
  add(ckpt::cli::add_keygen);
  add(ckpt::cli::add_sign);
  add(ckpt::cli::add_registry);
  add(ckpt::cli::add_view);
  add(ckpt::cli::add_serve);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : ckpt::cli::kBadInput;
  }
  try {
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const ckpt::Error& e) {
    std::cerr << "ckpt: error: " << ckpt::cli::terminal_safe(e.what(), true) << "\n";
    return ckpt::cli::kBadInput;
  } catch (const std::bad_alloc&) {
    std::cerr << "ckpt: error: out of memory\n";
    return ckpt::cli::kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "ckpt: error: " << ckpt::cli::terminal_safe(e.what(), true) << "\n";
    return ckpt::cli::kBadInput;
  }
  return ckpt::cli::kBadInput;
}
