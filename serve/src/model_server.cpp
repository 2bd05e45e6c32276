#include "held_file.hpp"
#include "served_model.hpp"
#include "training_names.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry/model_registry.hpp>
#include <ckpt/serve/model_server.hpp>
#include <ckpt/signature.hpp>
#include <ckpt/train/trainer.hpp>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <semaphore>
#include <set>
#include <thread>

namespace ckpt::serve {

namespace fs = std::filesystem;
namespace mr = ckpt::model_registry;
using json = nlohmann::json;

namespace {

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || n[0] == '.' || n[0] == '-') return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

// Training checkpoints in `dir`, newest step first. Only regular files: a link is not the run's
// own checkpoint (it may point anywhere, outside the folder), as the web page's folders rule.
std::vector<std::pair<int64_t, fs::path>> training_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code fec;
    if (e.symlink_status(fec).type() != fs::file_type::regular) continue;
    if (auto s = detail::training_step(e.path().filename().string())) out.emplace_back(*s, e.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

bool is_training_folder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && !training_checkpoints(p).empty();
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A file's identity for remembering that it failed: a file replaced under the same name is
// tried again.
std::string file_key(const fs::path& p) {
  struct stat st{};
  if (::lstat(p.c_str(), &st) != 0) return p.string();
  return p.string() + "|" + std::to_string(st.st_ino) + "|" + std::to_string(st.st_size) + "|" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}


}  // namespace

ModelArgument parse_model_argument(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos)
    throw UsageError("model '" + text + "': expected NAME=PATH (a checkpoint file, a training folder or registry:NAME@ALIAS)");
  ModelArgument a{text.substr(0, eq), text.substr(eq + 1)};
  if (!valid_name(a.name))
    throw UsageError("model name '" + a.name + "': use 1-128 of A-Z a-z 0-9 . _ -, not starting with '.' or '-'");
  if (a.source.empty()) throw UsageError("model '" + a.name + "': no path after '='");
  return a;
}

void ModelServer::Impl::log(const std::string& line) const {
  if (options.log) options.log(line);
}

const Served* ModelServer::Impl::find(const std::string& name) const {
  for (const auto& m : models)
    if (m->name == name) return m.get();
  return nullptr;
}

// Reads, verifies and builds one version; throws naming what failed.
std::shared_ptr<Version> ModelServer::Impl::load(const Served& m, const fs::path& path, int64_t number, bool require_hashes,
                              bool check_signature, const detail::HeldFile* held) const {
  if (held) {
    return held->named([&] {
      // The name is not opened again: only the held descriptor's file.
      LoadOptions lo;
      lo.map = false;
      lo.format = held->format().name();
      auto reader = ckpt::open(held->open_path(), lo);
      std::string no_signature = default_signature_path(path).string();
      if (held->signature_is_link()) no_signature += " is a link, not followed";
      return load(m, path, number, require_hashes, check_signature, *reader, held->open_path(), held->signature(),
                  no_signature);
    });
  }
  LoadOptions lo;
  lo.map = false;  // the served copy lives in memory: a file replaced or truncated later cannot touch it
  auto reader = ckpt::open(path, lo);
  return load(m, path, number, require_hashes, check_signature, *reader, path, {}, default_signature_path(path).string());
}

std::shared_ptr<Version> ModelServer::Impl::load(const Served& m, const fs::path& path, int64_t number, bool require_hashes,
                                                 bool check_signature, FormatReader& reader_ref, const fs::path& open_path,
                                                 const fs::path& signature, const std::string& no_signature) const {
  auto v = std::make_shared<Version>();
  v->number = number;
  v->path = path.string();
  FormatReader* reader = &reader_ref;
  if (options.pubkey && check_signature) {
    SignatureReport s = verify_signature(open_path, *reader, *options.pubkey, signature);
    if (!s.present) throw IntegrityError(path.string() + ": no signature (" + no_signature + "), and --pubkey requires one");
    if (!s.ok()) throw IntegrityError(path.string() + ": signature: " + s.problems.front());
    v->signature = "valid, key " + s.key_id;
  } else if (options.pubkey) {
    v->signature = "valid, key " + options.pubkey->id() + " (checked by the registry's pull)";
  }
  Document doc = reader->load(false);
  VerifyReport r = verify_document(doc);
  if (!r.ok()) throw IntegrityError(path.string() + ": " + r.problems.front());
  if (!r.has_integrity && require_hashes) throw IntegrityError(path.string() + ": records no hashes of its tensors");
  v->integrity = r.has_integrity ? std::to_string(r.tensors_checked) + " tensors match their recorded hashes"
                                 : "no hashes recorded (a file from another tool); structure read";
  auto c = std::make_shared<Checkpoint>(Checkpoint::from_document(std::move(doc), path.string()));
  auto model = train::model_from_checkpoint(*c);
  v->checkpoint = std::move(c);
  detail::BatchOptions bo;
  bo.max_batch = options.max_batch;
  bo.batch_timeout = options.batch_timeout;
  bo.threads = options.threads;
  bo.exact = options.exact_batching;
  v->batcher = std::make_unique<detail::Batcher>(std::move(model), bo, [this, name = m.name](int64_t rows) {
    metrics.batch(name, rows);
  });
  if (bo.exact && bo.max_batch > 1)
    log("ckpt serve: model " + m.name + " version " + std::to_string(number) + ": batch sizes that round alike: " +
        v->batcher->describe_classes());
  return v;
}

// A registry version pulled into a scratch folder (removed once read: the version is held
// in memory).
std::shared_ptr<Version> ModelServer::Impl::load_registry(const Served& m, int64_t* seen) const {
  auto reg = mr::ModelRegistry::open(options.registry_uri.empty() ? mr::default_uri() : options.registry_uri);
  const mr::VersionInfo info = reg->show(*m.ref);
  if (seen) *seen = info.version;
  if (auto cur = m.now(); cur && cur->number == info.version) return nullptr;
  {
    std::lock_guard lock(m.mu);
    if (m.failed_versions.count(info.version)) return nullptr;  // reported once, not pulled again
  }
  std::string templ = (fs::temp_directory_path() / "ckpt-serve-XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw IoError("cannot create a scratch folder: " + std::string(std::strerror(errno)));
  struct Remove {
    fs::path dir;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } scratch{templ};
  const Format f = Registry::global().get(info.format);
  std::string ext = f.info().extensions.empty() ? "" : f.info().extensions.front();
  if (!ext.empty() && ext[0] != '.') ext = "." + ext;
  const fs::path file = scratch.dir / (info.name + "-" + std::to_string(info.version) + ext);
  mr::PullOptions po;
  po.to = info.format;
  po.fsync = false;
  po.require_signed = options.pubkey;
  const mr::PullReport rep = reg->pull(mr::Ref{info.name, info.version, std::nullopt}, file, po);
  auto v = load(m, file, rep.version.version, false, false);
  v->path = std::string(mr::kRegistryPrefix) + info.name + "/" + std::to_string(info.version);
  return v;
}

void ModelServer::Impl::record_failure(Served& m, int64_t version, const std::string& path, const std::string& message) {
  {
    std::lock_guard lock(m.mu);
    // The same failure again (a registry that stays unreachable) is reported once.
    if (m.failure && m.failure->version == version && m.failure->message == message) return;
    m.failure = Failure{version, path, message, now_utc()};
  }
  metrics.load_failure(m.name);
  log("ckpt serve: model " + m.name + ": version " + std::to_string(version) + " not loaded, still serving " +
      (m.now() ? std::to_string(m.now()->number) : std::string("nothing")) + ": " + message);
}

void ModelServer::Impl::install(Served& m, std::shared_ptr<const Version> v) {
  std::shared_ptr<const Version> old;
  {
    std::lock_guard lock(m.mu);
    old = std::exchange(m.current, v);
  }
  metrics.version(m.name, v->number);
  if (old) {
    metrics.swap(m.name);
    log("ckpt serve: model " + m.name + ": now serving version " + std::to_string(v->number) + " (" + v->path +
        "), was " + std::to_string(old->number));
  }
  // `old` is released here; requests still holding it finish on it first.
}

// Loads a newer version of `m` if its source has one; true when one was swapped in. Failures
// are recorded, never thrown.
bool ModelServer::Impl::refresh(Served& m) {
  auto cur = m.now();
  switch (m.kind) {
    case Served::Kind::file:
      return false;
    case Served::Kind::training_folder:
      for (const auto& [step, path] : training_checkpoints(m.source)) {
        if (cur && step <= cur->number) return false;
        // With a key, the signature beside the file is part of what failed: a checkpoint
        // refused for having none is tried again once it is signed (or re-signed).
        const std::string key =
            file_key(path) + (options.pubkey ? "|sig:" + file_key(default_signature_path(path)) : std::string());
        {
          std::lock_guard lock(m.mu);
          if (m.failed_files.count(key)) continue;
        }
        try {
          // Listed as a regular file; a link put in its place since is refused, not followed.
          const detail::HeldFile held(path);
          install(m, load(m, path, step, true, true, &held));
          return true;
        } catch (const std::exception& e) {
          {
            std::lock_guard lock(m.mu);
            if (m.failed_files.size() > 10000) m.failed_files.clear();
            m.failed_files.insert(key);
          }
          record_failure(m, step, path.string(), e.what());
        }
      }
      return false;
    case Served::Kind::registry: {
      int64_t seen = 0;
      try {
        auto v = load_registry(m, &seen);
        if (!v) return false;
        install(m, std::move(v));
        return true;
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(m.mu);
          if (seen != 0) m.failed_versions.insert(seen);
        }
        record_failure(m, seen, m.source, e.what());
      }
      return false;
    }
  }
  return false;
}


ModelServer::ModelServer(std::vector<ModelArgument> models, ServeOptions options) : impl_(std::make_shared<Impl>()) {
  Impl& im = *impl_;
  im.options = std::move(options);
  if (im.options.max_batch < 1) throw UsageError("--max-batch must be at least 1");
  if (im.options.max_instances < 1) throw UsageError("the limit of rows per request must be at least 1");
  if (im.options.threads < 1) throw UsageError("--threads must be at least 1");
  // Deadlines are computed as now + these; bounded so the sums cannot overflow.
  if (im.options.batch_timeout.count() < 0 || im.options.batch_timeout > std::chrono::seconds(10))
    throw UsageError("--batch-timeout-us must be between 0 and 10 s");
  if (im.options.poll_interval.count() < 0 || im.options.poll_interval > std::chrono::hours(24))
    throw UsageError("--poll-ms must be between 1 ms and a day");
  if (models.empty()) throw UsageError("no model to serve: give NAME=PATH");
  for (auto& a : models) {
    if (im.find(a.name)) throw UsageError("model name '" + a.name + "' is given twice");
    auto m = std::make_unique<Served>();
    m->name = a.name;
    m->source = a.source;
    // "registry:" always names the registry, as for every ckpt command; ./registry:x is a file.
    if (mr::is_registry_reference(a.source)) {
      m->kind = Served::Kind::registry;
      m->ref = mr::parse_ref(a.source.substr(std::strlen(mr::kRegistryPrefix)));
    } else if (is_training_folder(a.source)) {
      m->kind = Served::Kind::training_folder;
    } else {
      m->kind = Served::Kind::file;
    }
    try {
      switch (m->kind) {
        case Served::Kind::file:
          im.install(*m, im.load(*m, a.source, 1, false, true));
          break;
        case Served::Kind::training_folder:
          if (!im.refresh(*m))
            throw IntegrityError("no checkpoint in the training folder loads and verifies" +
                                 (m->failure ? " (the newest: " + m->failure->message + ")" : std::string()));
          break;
        case Served::Kind::registry:
          im.install(*m, im.load_registry(*m, nullptr));
          break;
      }
    } catch (const Error& e) {
      // Keep the error's kind (usage, I/O, integrity) and name the model.
      const std::string msg = "model '" + a.name + "' (" + a.source + "): " + e.what();
      if (dynamic_cast<const UsageError*>(&e)) throw UsageError(msg);
      if (dynamic_cast<const IoError*>(&e)) throw IoError(msg);
      if (dynamic_cast<const IntegrityError*>(&e)) throw IntegrityError(msg);
      throw FormatError(msg);
    }
    im.models.push_back(std::move(m));
  }
  if (im.options.poll_interval.count() > 0) {
    im.poller = std::thread([&im] {
      std::unique_lock lock(im.stop_mu);
      while (!im.stop_cv.wait_for(lock, im.options.poll_interval, [&] { return im.stopping; })) {
        lock.unlock();
        {
          std::lock_guard poll(im.poll_mu);
          for (auto& m : im.models) {
            try {
              im.refresh(*m);
            } catch (const std::exception& e) {
              // refresh records load failures itself; this is anything else (out of memory
              // listing a folder): reported, and the next poll tries again.
              im.log("ckpt serve: model " + m->name + ": polling failed: " + e.what());
            }
          }
        }
        lock.lock();
      }
    });
  }
}

ModelServer::~ModelServer() {
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  if (impl_->poller.joinable()) impl_->poller.join();
}

size_t ModelServer::poll_now() {
  std::lock_guard poll(impl_->poll_mu);
  size_t n = 0;
  for (auto& m : impl_->models) n += impl_->refresh(*m) ? 1 : 0;
  return n;
}

std::string ModelServer::metrics_text() const { return impl_->metrics.text(); }

std::function<void(int)> ModelServer::count_refused() const {
  return [impl = impl_](int status) { impl->metrics.request("", "http", status, 0); };
}

ServedList ModelServer::served() const {
  return [impl = impl_] {
    std::vector<ServedCheckpoint> out;
    for (const auto& m : impl->models)
      if (auto v = m->now()) out.push_back({m->name, v->number, m->source, v->path, v->checkpoint});
    return out;
  };
}

}  // namespace ckpt::serve
