// ckpt serve: TensorFlow Serving's REST API over models rebuilt from checkpoints (docs/serving.md).
#include "commands.hpp"
#include "text.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/serve/http_server.hpp>
#include <ckpt/serve/model_server.hpp>
#include <ckpt/serve/ui_routes.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <pthread.h>

namespace ckpt::cli {

Runner add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve models over HTTP with TensorFlow Serving's REST API (predict, status, metadata, /metrics)");
  static std::vector<std::string> models;
  static std::string bind = "127.0.0.1", pubkey, registry_uri;
  static uint16_t port = 8501;
  static int64_t max_batch = 32, batch_timeout_us = 1000, threads = 1, poll_ms = 2000, max_instances = 1024;
  static size_t max_body = size_t{16} << 20;
  static bool ui = false;
  static std::string batching = "exact";
  cmd->add_option("MODEL", models,
                  "NAME=PATH: a checkpoint file (any format), a training folder (its newest verified checkpoint, "
                  "replaced as newer ones appear) or registry:NAME@ALIAS (followed as the alias moves)")
      ->required();
  cmd->add_option("--port", port, "TCP port (0: any free port, printed)");
  cmd->add_option("--bind", bind, "address to listen on (default: loopback only)");
  cmd->add_option("--max-batch", max_batch, "rows run together at most (dynamic batching; 1: none)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-timeout-us", batch_timeout_us, "how long the first request of a batch waits for more")
      ->check(CLI::Range(int64_t{0}, int64_t{10'000'000}));
  cmd->add_option("--batching", batching,
                  "exact: put requests together only where no answer changes by a bit (each equals ckpt predict); "
                  "any: always, as TF Serving does (one-row requests are batched too; last bits may differ)")
      ->check(CLI::IsMember({"exact", "any"}));
  cmd->add_option("--threads", threads, "compute threads per model")->check(CLI::PositiveNumber);
  cmd->add_option("--poll-ms", poll_ms, "how often training folders and registry aliases are checked for new versions")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400'000}));
  cmd->add_option("--max-instances", max_instances, "rows one request may hold")->check(CLI::PositiveNumber);
  cmd->add_option("--max-body-bytes", max_body, "largest request body accepted (413 beyond)")->check(CLI::PositiveNumber);
  cmd->add_option("--pubkey", pubkey, "serve only versions signed by this key (KEY.pub; FILE.sig beside each checkpoint)");
  cmd->add_option("--registry", registry_uri, "the registry of registry:NAME@ALIAS models (default: $CKPT_REGISTRY, else sqlite://ckpt-registry/registry.db)");
  cmd->add_flag("--ui", ui, "also serve the web page at / (docs/web-page.md)");
  return [] {
    serve::ServeOptions o;
    o.max_batch = max_batch;
    o.batch_timeout = std::chrono::microseconds(batch_timeout_us);
    o.threads = static_cast<int>(threads);
    o.exact_batching = batching == "exact";
    o.poll_interval = std::chrono::milliseconds(poll_ms);
    o.max_instances = max_instances;
    if (!pubkey.empty()) o.pubkey = read_public_key(pubkey);
    o.registry_uri = registry_uri;
    o.log = [](const std::string& line) { std::cerr << terminal_safe(line, true) << std::endl; };
    std::vector<serve::ModelArgument> args;
    for (const auto& m : models) args.push_back(serve::parse_model_argument(m));

    // SIGINT and SIGTERM are taken by sigwait below: blocked here, before any thread starts, so
    // every thread inherits the mask and none is interrupted by them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    serve::ModelServer models_served(std::move(args), o);
    auto router = std::make_shared<serve::Router>();
    models_served.add_routes(*router);
    // The page's routes go last: its "/" route takes every GET path left.
    if (ui) {
      serve::UiOptions uo;
      uo.pubkey = o.pubkey;
      serve::add_ui_routes(*router, models_served.served(), uo);
    }
    // As `ckpt view` does: beyond loopback anyone who can reach the port gets the API (and with
    // --ui the checkpoints' contents), with no authentication. Said before binding.
    if (bind.rfind("127.", 0) != 0 && bind != "::1")
      std::cerr << "ckpt serve: warning: listening on " << terminal_safe(bind)
                << " makes the models" << (ui ? " and the page (every tensor of the served checkpoints)" : "")
                << " reachable from other machines, with no authentication" << std::endl;
    serve::ServerOptions so;
    so.bind = bind;
    so.port = port;
    so.max_body_bytes = max_body;
    so.on_refused = models_served.count_refused();
    serve::HttpServer http(router, so);
    const std::string host = bind.find(':') != std::string::npos ? "[" + bind + "]" : bind;
    for (const auto& s : models_served.served()())
      std::cout << "serving " << s.model << " version " << s.version << " from " << terminal_safe(s.path, true) << "\n";
    std::cout << "listening on http://" << host << ":" << http.port() << "/ (POST /v1/models/NAME:predict"
              << (ui ? ", the page at /" : "") << "); Ctrl-C stops" << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::cout << "stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")" << std::endl;
    http.stop();
    return kOk;
  };
}

}  // namespace ckpt::cli
