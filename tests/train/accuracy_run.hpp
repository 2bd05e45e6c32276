// Trains a config to its end and reports what the accuracy targets are judged on: the best
// test accuracy over the epochs (the run's best checkpoint), the last one, and the time taken.
#pragma once

#include <ckpt/registry.hpp>
#include <ckpt/train/trainer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unistd.h>

namespace ckpt::test {

struct TempRunDir {
  std::filesystem::path path;
  TempRunDir() {
    path = std::filesystem::temp_directory_path() /
           ("ckpt-accuracy-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempRunDir() { std::filesystem::remove_all(path); }
};

struct AccuracyRun {
  double best = 0, last = 0, seconds = 0;
  int64_t epochs = 0;
  std::filesystem::path final_checkpoint;
};

inline AccuracyRun train_and_score(const train::TrainConfig& config, const std::string& name) {
  AccuracyRun r;
  train::TrainCallbacks cb;
  cb.on_epoch = [&](const train::EpochReport& e) {
    r.best = std::max(r.best, e.test_accuracy);
    r.last = e.test_accuracy;
    r.epochs = e.epoch;
  };
  auto t0 = std::chrono::steady_clock::now();
  r.final_checkpoint = train::Trainer(config, Registry::global()).run(cb);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: best test accuracy %.4f, last %.4f, %lld epochs in %.1f s\n", name.c_str(), r.best, r.last,
              static_cast<long long>(r.epochs), r.seconds);
  return r;
}

// A config file of the repository with its checkpoints sent to `dir` and no resume, so the test
// trains from scratch exactly what the main job trains.
inline train::TrainConfig repository_config(const std::filesystem::path& file, const std::filesystem::path& dir) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str());
  j["checkpoint"]["dir"] = dir.string();
  j["checkpoint"]["resume"] = "none";
  return train::TrainConfig::parse(j.dump(), file.string(), {}, Registry::global());
}

}  // namespace ckpt::test
