// The models `ckpt serve` serves (docs/serving.md): each named model comes from a checkpoint file
// (any format, or a sharded folder), a training folder (its newest checkpoint that loads and
// verifies, replaced when a newer one appears) or registry:NAME@ALIAS (followed when the alias
// moves). Each served version owns its model on a batcher thread; a new version is loaded and
// verified beside the old one and swapped in atomically, and one that fails is reported while
// the old one keeps serving. add_routes answers TensorFlow Serving's REST API and /metrics.
#pragma once

#include <ckpt/keys.hpp>
#include <ckpt/serve/routes.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ckpt::serve {

struct ServeOptions {
  // Dynamic batching: requests queued for one version run together up to max_batch rows, or
  // once the first of them has waited batch_timeout. 1 row / 0 us: no batching.
  int64_t max_batch = 32;
  std::chrono::microseconds batch_timeout{1000};
  // Exact: requests are only put together where that changes no bit of any answer, so every
  // prediction equals `ckpt predict` on the same rows (oneDNN's kernels, and so their rounding,
  // depend on the batch size; see serve/src/batcher.hpp). Off: any requests are put together,
  // as TensorFlow Serving does, and a row may differ from a lone run in its last bits.
  bool exact_batching = true;
  int threads = 1;               // compute threads per model (ckpt predict's --threads)
  int64_t max_instances = 1024;  // rows one request may hold
  // Every version must carry a valid Ed25519 signature by this key (FILE.sig; for the registry,
  // the signature registered with the version).
  std::optional<PublicKey> pubkey{};
  // How often training folders and registry aliases are checked for a new version; 0: only
  // through poll_now().
  std::chrono::milliseconds poll_interval{2000};
  std::string registry_uri{};  // empty: $CKPT_REGISTRY or the default (model_registry.hpp)
  // Where load failures and swaps are reported (ckpt serve: stderr). Called from the poll
  // thread.
  std::function<void(const std::string&)> log{};
};

struct ModelArgument {
  std::string name;    // what clients use in /v1/models/{name}
  std::string source;  // a path, or registry:NAME@ALIAS
};
// "name=PATH" -> {name, PATH}. Names are 1-128 of [A-Za-z0-9._-], not starting with '.' or '-'.
// Throws UsageError.
ModelArgument parse_model_argument(const std::string& text);

class ModelServer {
 public:
  // Loads the first version of every model (throws, naming the model, when one cannot be
  // served at all) and starts polling.
  ModelServer(std::vector<ModelArgument> models, ServeOptions options);
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  // GET /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata], POST ...:predict, GET /metrics.
  // The routes share ownership of the models, so the router may outlive this object.
  void add_routes(Router& router) const;
  // What is served now (thread-safe; shares ownership like the routes).
  ServedList served() const;
  // The Prometheus text exposition of /metrics.
  std::string metrics_text() const;
  // Counts the errors the HTTP server answers itself (ServerOptions::on_refused) in /metrics,
  // under model="" and api="http".
  std::function<void(int status)> count_refused() const;
  // Checks every source for a new version now, swapping it in; returns how many were swapped.
  size_t poll_now();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ckpt::serve
