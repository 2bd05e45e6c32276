#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/sharded.hpp>
#include <ckpt/train/manager.hpp>

#include <algorithm>
#include <cstdio>
#include <set>

namespace ckpt::train {

namespace {

// "step-000000123<ext>" -> 123; anything else (temporaries included) -> nullopt.
std::optional<int64_t> step_of(const std::string& name, const std::string& ext) {
  const std::string prefix = "step-";
  if (name.size() != prefix.size() + 9 + ext.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - ext.size(), ext.size(), ext) != 0)
    return std::nullopt;
  int64_t v = 0;
  for (size_t i = prefix.size(); i < prefix.size() + 9; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

}  // namespace

Group clone_tensors(const Group& g) {
  Group out = g;
  std::function<void(Group&)> deep = [&](Group& x) {
    for (auto& c : x.children()) {
      if (c.is_tensor())
        c.tensor() = c.tensor().clone();
      else
        deep(c.group());
    }
  };
  deep(out);
  return out;
}

CheckpointManager::CheckpointManager(CheckpointConfig config, const Registry& registry)
    : config_(std::move(config)), format_(registry.get(config_.backend)) {
  std::error_code ec;
  fs::create_directories(config_.dir, ec);
  if (ec) throw IoError("cannot create checkpoint folder '" + config_.dir.string() + "': " + ec.message());
  if (config_.background) {
    worker_ = std::thread([this] {
      std::unique_lock lock(mu_);
      for (;;) {
        cv_.wait(lock, [this] { return pending_ || stop_; });
        if (!pending_) return;
        auto job = std::move(*pending_);
        pending_.reset();
        lock.unlock();
        try {
          save_now(job.first, job.second);
        } catch (...) {
          lock.lock();
          error_ = std::current_exception();
          busy_ = false;
          cv_.notify_all();
          continue;
        }
        lock.lock();
        busy_ = false;
        cv_.notify_all();
      }
    });
  }
}

CheckpointManager::~CheckpointManager() {
  if (worker_.joinable()) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !busy_; });
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
}

fs::path CheckpointManager::path_for(int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof name, "step-%09lld", static_cast<long long>(step));
  // A sharded checkpoint is a folder, named without the backend's extension (its shards carry it).
  return config_.dir / (config_.sharded ? std::string(name) : name + format_.info().extensions.at(0));
}

std::vector<SavedCheckpoint> CheckpointManager::list() const {
  std::vector<SavedCheckpoint> out;
  std::error_code ec;
  const std::string ext = format_.info().extensions.at(0);
  for (const auto& e : fs::directory_iterator(config_.dir, ec)) {
    const std::string name = e.path().filename().string();
    if (auto s = step_of(name, ext)) out.push_back({*s, e.path()});
    // Sharded folders, whatever the config says now: a folder counts once its index is in it
    // (the index is renamed into place with it, last); a staging folder's name is hidden.
    else if (auto f = step_of(name, ""); f && sharded::is_sharded(e.path()))
      out.push_back({*f, e.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

void CheckpointManager::save(Checkpoint c, int64_t step) {
  if (!config_.background) {
    save_now(c, step);
    return;
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !busy_; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  pending_.emplace(std::move(c), step);
  busy_ = true;
  cv_.notify_all();
}

void CheckpointManager::wait() {
  if (!config_.background) return;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !busy_; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void CheckpointManager::save_now(const Checkpoint& c, int64_t step) {
  SaveOptions o;
  o.format = format_.name();
  o.format_options = config_.options;
  ckpt::save(c, path_for(step), o);
  saved(c, step);
}

void CheckpointManager::saved(const Checkpoint& c, int64_t step) {
  // The new file's metric is known without reading it back.
  std::optional<double> m;
  if (const Group* metrics = c.trainer.find_group("metrics"))
    if (const Value* v = metrics->attribute(config_.keep_best.metric))
      if (auto* d = std::get_if<double>(v)) m = *d;
  {
    std::lock_guard lock(mu_);
    metric_cache_[path_for(step)] = m;
  }
  apply_retention(step);
}

std::optional<double> CheckpointManager::metric_of(const fs::path& p) {
  {
    std::lock_guard lock(mu_);
    auto it = metric_cache_.find(p);
    if (it != metric_cache_.end()) return it->second;
  }
  std::optional<double> m;
  try {
    LoadOptions lo;
    lo.format = format_.name();
    const Document& tree = ckpt::open(p, lo)->tree();
    if (const Group* metrics = tree.find_group_path("trainer/metrics"))
      if (const Value* v = metrics->attribute(config_.keep_best.metric))
        if (auto* d = std::get_if<double>(v)) m = *d;
  } catch (const Error&) {
    // An unreadable file has no metric; it is never preferred as "best".
  }
  std::lock_guard lock(mu_);
  metric_cache_[p] = m;
  return m;
}

std::optional<fs::path> CheckpointManager::best() {
  if (config_.keep_best.metric.empty()) return std::nullopt;
  std::optional<std::pair<double, fs::path>> top;
  for (const auto& s : list())
    if (auto m = metric_of(s.path)) {
      double score = config_.keep_best.mode == "max" ? -*m : *m;
      if (!top || score < top->first) top = {score, s.path};
    }
  if (!top) return std::nullopt;
  return top->second;
}

void CheckpointManager::apply_retention(int64_t newest_step) {
  auto all = list();
  if (config_.keep_last == 0) return;
  std::set<fs::path> keep;
  for (size_t i = all.size() > static_cast<size_t>(config_.keep_last) ? all.size() - static_cast<size_t>(config_.keep_last) : 0;
       i < all.size(); ++i)
    keep.insert(all[i].path);
  for (const auto& s : all)
    if (s.step == newest_step) keep.insert(s.path);  // never the one just written
  if (!config_.keep_best.metric.empty() && config_.keep_best.n > 0) {
    std::vector<std::pair<double, fs::path>> scored;
    for (const auto& s : all)
      if (auto m = metric_of(s.path)) scored.emplace_back(config_.keep_best.mode == "max" ? -*m : *m, s.path);
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < scored.size() && i < static_cast<size_t>(config_.keep_best.n); ++i) keep.insert(scored[i].second);
  }
  for (const auto& s : all)
    if (!keep.count(s.path)) {
      std::error_code ec;
      fs::remove_all(s.path, ec);  // a file, or a sharded folder
      std::lock_guard lock(mu_);
      metric_cache_.erase(s.path);
    }
}

std::optional<fs::path> CheckpointManager::latest_good(const std::function<void(const std::string&)>& warn) const {
  auto all = list();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      LoadOptions lo;
      lo.format = format_.name();
      auto reader = ckpt::open(it->path, lo);
      VerifyReport r = verify(*reader);
      if (r.ok() && r.has_integrity) return it->path;
      if (warn) warn(it->path.string() + ": " + (r.problems.empty() ? "no hashes recorded" : r.problems.front()) + "; trying an older one");
    } catch (const Error& e) {
      if (warn) warn(std::string(e.what()) + "; trying an older one");
    }
  }
  return std::nullopt;
}

size_t CheckpointManager::remove_temporaries() const {
  size_t n = 0;
  for (const auto& t : remove_stale_temporaries(config_.dir)) n += t.removed ? 1 : 0;
  return n;
}

}  // namespace ckpt::train
