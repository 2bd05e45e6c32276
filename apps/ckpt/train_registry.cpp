#include "train_registry.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <thread>

namespace ckpt::cli {

namespace {

namespace mr = ckpt::model_registry;

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

TrainRegistration::~TrainRegistration() = default;
TrainRegistration::TrainRegistration(TrainRegistration&&) noexcept = default;

std::optional<TrainRegistration> TrainRegistration::take(const std::string& text, const std::string& config_path,
                                                        std::string& rest) {
  rest = text;
  // Anything that is not a JSON object is left for TrainConfig::parse to report in its words.
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("registry")) return std::nullopt;
  auto fail = [&](const std::string& key, const std::string& what) -> void {
    throw UsageError(config_path + ": " + key + ": " + what);
  };
  const auto& r = j["registry"];
  if (!r.is_object()) fail("registry", "expected an object {\"uri\", \"name\", \"register\", \"alias\"}");
  for (const auto& [k, v] : r.items())
    if (k != "uri" && k != "name" && k != "register" && k != "alias")
      fail("registry", "unknown key '" + k + "' (known: uri, name, register, alias)");
  auto str = [&](const char* k) -> std::string {
    if (!r.contains(k)) return {};
    if (!r[k].is_string()) fail(std::string("registry.") + k, "expected a string");
    return r[k].get<std::string>();
  };
  TrainRegistration t;
  t.config_path_ = config_path;
  t.uri_ = str("uri");
  if (t.uri_.empty()) t.uri_ = mr::default_uri();
  try {
    mr::parse_uri(t.uri_);
  } catch (const UsageError& e) {
    fail("registry.uri", e.what());
  }
  t.name_ = str("name");
  if (t.name_.empty()) fail("registry.name", "missing (the model's name in the registry)");
  try {
    mr::check_model_name(t.name_);
  } catch (const UsageError& e) {
    fail("registry.name", e.what());
  }
  const std::string when = r.contains("register") ? str("register") : "best";
  if (when == "best") t.when_ = When::best;
  else if (when == "every") t.when_ = When::every;
  else if (when == "last") t.when_ = When::last;
  else fail("registry.register", "expected \"best\", \"every\" or \"last\", not \"" + when + "\"");
  t.alias_ = str("alias");
  if (r.contains("alias")) {
    try {
      mr::check_alias(t.alias_);
    } catch (const UsageError& e) {
      fail("registry.alias", e.what());
    }
  }
  j.erase("registry");
  rest = j.dump(2);
  return t;
}

void TrainRegistration::open(const train::TrainConfig& config) {
  dir_ = config.checkpoint.dir;
  if (!config.checkpoint.keep_best.metric.empty()) {
    metric_ = config.checkpoint.keep_best.metric;
    maximize_ = config.checkpoint.keep_best.mode != "min";
  }
  if (config.checkpoint.resume != "auto" && config.checkpoint.resume != "none") parent_ = config.checkpoint.resume;
  run_start_ = utc_now();
  registry_ = mr::ModelRegistry::open(uri_, mr::ModelRegistry::Open::create);
}

void TrainRegistration::on_message(const std::string& message) {
  static const std::string kResumed = "resumed from ";
  if (message.rfind(kResumed, 0) != 0) return;
  const size_t end = message.find(" (epoch ");
  parent_ = message.substr(kResumed.size(), end == std::string::npos ? std::string::npos : end - kResumed.size());
}

void TrainRegistration::on_epoch(const train::EpochReport& r) {
  if (r.saved.empty() || when_ == When::last) return;
  if (when_ == When::best) {
    const double value = metric_ == "test_accuracy" ? r.test_accuracy
                         : metric_ == "test_loss"   ? r.test_loss
                         : metric_ == "train_accuracy" ? r.train_accuracy
                                                       : r.train_loss;
    // A NaN metric is never the best (every comparison with it is false, so it would win).
    if (std::isnan(value)) return;
    if (best_ && (maximize_ ? value <= *best_ : value >= *best_)) return;
    best_ = value;
  }
  register_file(dir_ / r.saved, false);
}

void TrainRegistration::finish(const std::filesystem::path& final_checkpoint) {
  if (when_ == When::last && !final_checkpoint.empty()) register_file(final_checkpoint, true);
}

void TrainRegistration::register_file(const std::filesystem::path& file, bool last) {
  // A background save renames its file into place when whole; wait for it rather than
  // register a checkpoint that is not there yet.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  std::error_code ec;
  while (!std::filesystem::exists(file, ec)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw IoError("registry: the checkpoint " + file.string() + " did not appear within 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  mr::RegisterOptions o;
  o.name = name_;
  if (!alias_.empty()) o.aliases = {alias_};
  o.description = "ckpt train " + config_path_;
  o.run_start = run_start_;
  if (last) o.run_end = utc_now();
  o.tags = {{"registered_by", "ckpt train"}};
  std::error_code pe;
  if (!parent_.empty() && std::filesystem::exists(parent_, pe)) o.parent = parent_;
  const auto v = registry_->register_checkpoint(file, o);
  std::fprintf(stderr, "ckpt train: registered %s as %s/%lld%s%s\n", file.filename().c_str(), v.name.c_str(),
               static_cast<long long>(v.version), alias_.empty() ? "" : " @", alias_.c_str());
}

}  // namespace ckpt::cli
