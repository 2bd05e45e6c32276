// What the model server holds, shared by its loading and polling (model_server.cpp) and its
// REST API (rest_api.cpp): the served models, each with its current version, and the metrics.
#pragma once

#include "batcher.hpp"
#include "metrics.hpp"

#include <ckpt/checkpoint.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/registry/model_registry.hpp>
#include <ckpt/serve/model_server.hpp>

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ckpt::serve {

namespace detail {
class HeldFile;
}

// One loaded, verified version: its checkpoint and the batcher that owns its model. Requests
// hold it through a shared_ptr, so a version swapped out stays until they finish.
struct Version {
  int64_t number = 0;
  std::string path;
  std::shared_ptr<const Checkpoint> checkpoint;
  std::unique_ptr<detail::Batcher> batcher;
  std::string integrity;  // what verification found
  std::string signature;  // "" when no key was given
};

struct Failure {
  int64_t version = 0;
  std::string path, message, at;
};

struct Served {
  enum class Kind { file, training_folder, registry };
  std::string name, source;
  Kind kind = Kind::file;
  std::optional<model_registry::Ref> ref;  // registry
  mutable std::mutex mu;
  std::shared_ptr<const Version> current;
  std::optional<Failure> failure;     // the last version that failed to load
  std::set<std::string> failed_files;  // training-folder files already tried and refused
  std::set<int64_t> failed_versions;   // registry versions already tried and refused

  std::shared_ptr<const Version> now() const {
    std::lock_guard lock(mu);
    return current;
  }
};

struct ModelServer::Impl {
  ServeOptions options;
  std::vector<std::unique_ptr<Served>> models;
  mutable detail::Metrics metrics;  // counted from const paths too
  // Bounds memory: a parsed body costs up to ~6x its bytes (simdjson: 8 bytes of tape and 4 of
  // index for a number written in 2), so two are parsed at a time.
  std::counting_semaphore<64> parse_slots{2};
  std::mutex poll_mu;  // one poll at a time
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread poller;


  void log(const std::string& line) const;
  const Served* find(const std::string& name) const;
  // Reads, verifies (hashes; the signature when a key is given and check_signature) and builds
  // one version; throws naming what failed. `held`: a training folder's file, read through the
  // descriptor it holds (held_file.hpp), never through its name again.
  std::shared_ptr<Version> load(const Served& m, const std::filesystem::path& path, int64_t number, bool require_hashes,
                                bool check_signature, const detail::HeldFile* held = nullptr) const;
  std::shared_ptr<Version> load(const Served& m, const std::filesystem::path& path, int64_t number, bool require_hashes,
                                bool check_signature, FormatReader& reader, const std::filesystem::path& open_path,
                                const std::filesystem::path& signature, const std::string& no_signature) const;
  // The version the registry reference names now, pulled and loaded; nullptr when it is the one
  // served or one already refused. *seen: its number.
  std::shared_ptr<Version> load_registry(const Served& m, int64_t* seen) const;
  void record_failure(Served& m, int64_t version, const std::string& path, const std::string& message);
  // Swaps `v` in; the old version goes when the last request holding it ends.
  void install(Served& m, std::shared_ptr<const Version> v);
  // Loads a newer version of `m` if its source has one; true when one was swapped in. Failures
  // are recorded and reported, never thrown.
  bool refresh(Served& m);
};

}  // namespace ckpt::serve
