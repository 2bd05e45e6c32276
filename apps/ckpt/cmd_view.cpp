// `ckpt view FILE [FILE2]`: the web page (docs/web-page.md) over just the files given, served on
// loopback until SIGINT or SIGTERM. Two files can be compared; a training folder adds its
// metrics and lets any two of its checkpoints be compared.
#include "commands.hpp"
#include "text.hpp"

#ifndef CKPT_WITH_SERVE
#include <iostream>

namespace ckpt::cli {
// A build without libckpt_serve (-DCKPT_BUILD_TRAINER=OFF) keeps the command in `ckpt --help`
// and says why it does nothing.
Runner add_view(CLI::App& app) {
  auto* cmd = app.add_subcommand("view", "Serve a web page that shows a checkpoint (not in this build)");
  cmd->allow_extras();
  return [] {
    std::cerr << "ckpt: error: this build has no libckpt_serve (configured with -DCKPT_BUILD_TRAINER=OFF), so `ckpt "
                 "view` is unavailable\n";
    return kBadInput;
  };
}
}  // namespace ckpt::cli
#else

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/serve/http_server.hpp>
#include <ckpt/serve/ui_routes.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <pthread.h>
#include <set>

namespace ckpt::cli {

namespace view_command {  // one translation unit with the other commands (unity build)

namespace fs = std::filesystem;

struct Given {
  serve::ServedCheckpoint served;
  bool training_folder = false;
};

// What the page may show of `arg`: the file or sharded folder itself, or a training folder
// (its newest checkpoint, found again on every request, so checkpoints a running training
// writes appear). Each is opened now, so a file ckpt cannot read is an error before serving.
Given given(const std::string& arg, std::set<std::string>& names) {
  const fs::path p(arg);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw UsageError("'" + arg + "': no such file or folder");
  Given g;
  g.served.source = arg;
  g.served.version = 1;
  fs::path file = p;
  if (fs::is_directory(p, ec)) {
    fs::path newest = serve::newest_training_file(p);
    if (!newest.empty()) {
      g.training_folder = true;
      file = newest;
    }
  }
  ckpt::open(file)->tree();
  g.served.path = file.string();
  std::string name = fs::absolute(p, ec).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(p, ec).lexically_normal().parent_path().filename().string();
  if (name.empty()) name = arg;
  std::string unique = name;
  for (int i = 2; !names.insert(unique).second; ++i) unique = name + " (" + std::to_string(i) + ")";
  g.served.model = unique;
  return g;
}

std::string url_host(const std::string& bind) {
  if (bind.find(':') != std::string::npos) return "[" + bind + "]";
  return bind;
}

}  // namespace view_command

Runner add_view(CLI::App& app) {
  auto* cmd = app.add_subcommand("view", "Serve a web page that shows a checkpoint: its tree, tensor statistics, "
                                         "a diff of two, a training folder's metrics");
  static std::string file, file2, bind = "127.0.0.1", pubkey;
  static uint16_t port = 0;
  cmd->add_option("FILE", file, "a checkpoint file, a sharded folder or a training folder")->required();
  cmd->add_option("FILE2", file2, "a second one, to compare with FILE");
  cmd->add_option("--port", port, "port to listen on (default 0: any free port; the URL is printed)");
  cmd->add_option("--bind", bind, "address to listen on (default 127.0.0.1, this machine only)");
  cmd->add_option("--pubkey", pubkey, "check signatures (FILE.sig) against this public key when the page checks hashes");
  return [] {
    using namespace view_command;
    serve::UiOptions options;
    options.mode = "view";
    if (!pubkey.empty()) options.pubkey = read_public_key(pubkey);
    std::set<std::string> names;
    std::vector<Given> all;
    for (const auto& p : {file, file2})
      if (!p.empty()) all.push_back(given(p, names));
    serve::ServedList list = [all] {
      std::vector<serve::ServedCheckpoint> out;
      for (const auto& g : all) {
        out.push_back(g.served);
        if (g.training_folder) {
          fs::path newest = serve::newest_training_file(g.served.source);
          if (!newest.empty()) out.back().path = newest.string();
        }
      }
      return out;
    };
    auto router = std::make_shared<serve::Router>();
    serve::add_ui_routes(*router, list, std::move(options));

    // Blocked before the server's threads start, so they inherit the mask and only sigwait
    // below takes the signals.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    serve::ServerOptions so;
    so.bind = bind;
    so.port = port;
    so.handler_threads = 4;
    serve::HttpServer server(router, so);
    if (bind != "127.0.0.1" && bind != "::1" && bind != "localhost")
      std::cerr << "ckpt view: note: listening on " << terminal_safe(bind)
                << ", so other machines may reach the page; the default, 127.0.0.1, is this machine only\n";
    std::cout << "ckpt view: http://" << url_host(bind) << ":" << server.port() << "/" << std::endl;
    std::cout << "serving " << all.size() << (all.size() == 1 ? " checkpoint" : " checkpoints")
              << " until interrupted (Ctrl-C)" << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
    return kOk;
  };
}

}  // namespace ckpt::cli

#endif  // CKPT_WITH_SERVE
