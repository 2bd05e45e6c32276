#include "ui_source.hpp"

#include "held_file.hpp"
#include "training_names.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/serve/ui_routes.hpp>
#include <ckpt/signer.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>

namespace ckpt::serve::ui {

std::vector<FolderFile> training_files(const fs::path& folder) {
  std::vector<FolderFile> out;
  std::error_code ec;
  if (folder.empty() || !fs::is_directory(folder, ec)) return out;
  fs::directory_iterator it(folder, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    auto step = detail::training_step(name);
    // symlink_status: a link in the folder could lead anywhere, so it is not listed.
    if (!step || !fs::is_regular_file(it->symlink_status(ec))) continue;
    out.push_back({name, *step});
  }
  std::sort(out.begin(), out.end(),
            [](const FolderFile& a, const FolderFile& b) { return a.step != b.step ? a.step < b.step : a.name < b.name; });
  if (out.size() > kMaxFolderFiles) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(kMaxFolderFiles));
  return out;
}

namespace {

// `f` with the capability to map taken away, so that its readers read every tensor (map()
// answers nullopt and everything core does through the reader, hashing and signature checks
// included, falls back to reads). Made once per format: the library is loaded, and its
// manifest checked against it, through the registry's own Format first.
Format without_mapping(const Format& f) {
  static std::mutex mu;
  static std::map<std::string, Format> made;
  std::lock_guard lock(mu);
  if (auto it = made.find(f.name()); it != made.end()) return it->second;
  (void)f.identify({}, 0);  // loads the library and checks it against its manifest
  auto info = std::make_shared<PluginInfo>(f.plugin());
  info->manifest.clear();  // checked above; this copy differs from it in one capability on purpose
  size_t index = 0;
  while (index < info->formats.size() && info->formats[index].name != f.name()) ++index;
  if (index == info->formats.size()) throw PluginError("format '" + f.name() + "' is not in its own plugin's list");
  info->formats[index].capabilities &= ~static_cast<uint32_t>(CKPT_CAP_MAP);
  Format u(info, index);
  (void)u.identify({}, 0);  // loaded now, under the lock, so requests only read it
  return made.emplace(f.name(), u).first->second;
}

// Opens `path` as `format` (chosen by the caller) through a reader that never maps.
std::shared_ptr<FormatReader> open_unmapped(const fs::path& path, const Format& format) {
  auto reader = without_mapping(format).open_reader(path, {});
  Registry::global().check_one_reading(path, format);
  return reader;
}

}  // namespace

template <class F>
auto OpenedCheckpoint::named(F&& f) const -> decltype(f()) {
  return held_ ? held_->named(std::forward<F>(f)) : f();
}

OpenedCheckpoint OpenedCheckpoint::from_file(const fs::path& file) {
  OpenedCheckpoint c;
  c.file_ = c.open_path_ = file;
  c.label_ = file.string();
  std::error_code ec;
  if (fs::is_directory(file, ec)) {
    // A sharded folder: core's shard reader opens its parts itself (mapping where they map).
    LoadOptions lo;
    lo.map = false;
    c.reader_ = ckpt::open(file, lo);
  } else {
    c.reader_ = open_unmapped(file, Registry::global().for_reading(file, "auto"));
  }
  c.reader_->tree();  // list now, so a damaged file fails here, in one place
  return c;
}

OpenedCheckpoint OpenedCheckpoint::from_folder(const fs::path& folder, const std::string& name) {
  OpenedCheckpoint c;
  c.file_ = folder / name;
  c.label_ = c.file_.string();
  try {
    c.held_ = std::make_shared<detail::HeldFile>(c.file_);
  } catch (const detail::HeldFile::Refused& e) {
    throw HttpError(404, e.what());
  }
  c.open_path_ = c.held_->open_path();
  c.signature_ = c.held_->signature();
  c.signature_absent_ = c.signature_.empty();
  if (c.held_->signature_is_link())
    c.signature_problem_ = "'" + default_signature_path(c.file_).string() + "' is a link; links in a training folder are not followed";
  const Format format = c.held_->format();
  c.named([&] {
    c.reader_ = open_unmapped(c.open_path_, format);
    c.reader_->tree();
    return 0;
  });
  return c;
}

OpenedCheckpoint OpenedCheckpoint::from_memory(std::shared_ptr<const Checkpoint> checkpoint, std::string label,
                                               std::string file) {
  OpenedCheckpoint c;
  c.label_ = std::move(label);
  c.file_ = c.open_path_ = std::move(file);
  c.memory_ = std::make_shared<Document>(checkpoint->to_document());
  c.checkpoint_ = std::move(checkpoint);  // holds the tensors memory_ shares
  return c;
}

const Document& OpenedCheckpoint::tree() const { return reader_ ? reader_->tree() : *memory_; }

std::string OpenedCheckpoint::format() const { return reader_ ? reader_->format().name : std::string("memory"); }

const Tensor* OpenedCheckpoint::find_tensor(const std::string& path) const {
  if (path.empty() || path.front() == '/' || path.back() == '/') return nullptr;
  return tree().find_tensor_path(path);
}

std::span<const std::byte> OpenedCheckpoint::bytes(const std::string& path, const Tensor& listed,
                                                   std::vector<std::byte>& buffer) const {
  if (!reader_) {
    if (!listed.defined()) throw UsageError("'" + label_ + "' at " + path + ": the served checkpoint holds no data for this tensor");
    return listed.bytes();
  }
  return named([&] {
    buffer.resize(listed.nbytes());
    reader_->read_into(listed, path, buffer);
    return std::span<const std::byte>(buffer);
  });
}

VerifyReport OpenedCheckpoint::verify() const {
  if (!reader_) return verify_document(*memory_);
  return named([&] { return ckpt::verify(*reader_); });
}

std::optional<std::string> OpenedCheckpoint::signer() const {
  if (!reader_ || signature_absent_) return std::nullopt;
  return named([&] { return recorded_signer(open_path_, signature_); });
}

SignatureReport OpenedCheckpoint::check_signature(const PublicKey& key) const {
  if (!reader_ || signature_absent_) return {};
  return named([&] {
    SignatureReport r = verify_signature(open_path_, *reader_, key, signature_);
    if (held_) {
      for (auto& p : r.problems) p = detail::renamed(p, held_->names());
      r.signature = default_signature_path(file_);
    }
    return r;
  });
}

OpenedCheckpoint Resolved::open() const {
  if (!file_name.empty()) return OpenedCheckpoint::from_folder(served.source, file_name);
  if (served.checkpoint) return OpenedCheckpoint::from_memory(served.checkpoint, label(), served.path);
  if (!file.empty()) return OpenedCheckpoint::from_file(file);
  throw HttpError(404, "checkpoint '" + served.model + "' has neither a file the page may read nor a loaded checkpoint");
}

std::string Resolved::label() const {
  std::string s = served.model;
  if (!file_name.empty()) s += " / " + file_name;
  else if (served.checkpoint) s += " (version " + std::to_string(served.version) + ", as served)";
  return s;
}

Resolved resolve(const std::vector<ServedCheckpoint>& served, const std::string& model,
                 const std::optional<int64_t>& version, const std::string& file) {
  if (model.empty()) throw HttpError(400, "no checkpoint named (query parameter 'ckpt')");
  auto it = std::find_if(served.begin(), served.end(), [&](const ServedCheckpoint& s) { return s.model == model; });
  if (it == served.end()) throw HttpError(404, "no checkpoint named '" + model + "' is served");
  if (version && *version != it->version)
    throw HttpError(404, "version " + std::to_string(*version) + " of '" + model + "' is not served (serving version " +
                             std::to_string(it->version) + ")");
  Resolved r;
  r.served = *it;
  const auto files = training_files(it->source);
  r.training_folder = !files.empty();
  if (file.empty()) {
    if (it->checkpoint) return r;  // the version being served, from memory
    if (r.training_folder) {
      r.file_name = files.back().name;  // the newest, as listed: never through a link
      return r;
    }
    r.file = it->path;
    return r;
  }
  // Only a name the listing gave back: never a path the request makes up.
  auto f = std::find_if(files.begin(), files.end(), [&](const FolderFile& x) { return x.name == file; });
  if (f == files.end()) throw HttpError(404, "'" + model + "' has no checkpoint file named '" + file + "'");
  r.file_name = f->name;
  return r;
}

namespace {
std::mutex lease_mutex;
uint64_t leased = 0;
}  // namespace

void check_tensor_size(uint64_t bytes, const std::string& what) {
  if (bytes > kMaxTensorBytes)
    throw HttpError(413, what + ": a tensor of " + std::to_string(bytes) + " bytes is more than the page reads at once (" +
                             std::to_string(kMaxTensorBytes) + " bytes)");
}

MemoryLease::MemoryLease(uint64_t bytes) : bytes_(bytes) {
  if (bytes > kMemoryBudget)
    throw HttpError(413, "this request needs " + std::to_string(bytes) + " bytes of tensor data at once, more than the page's budget (" +
                             std::to_string(kMemoryBudget) + " bytes)");
  std::lock_guard lock(lease_mutex);
  if (leased + bytes > kMemoryBudget)
    throw HttpError(503, "the server is reading other large tensors for the page; try again shortly");
  leased += bytes;
}

MemoryLease::~MemoryLease() {
  std::lock_guard lock(lease_mutex);
  leased -= bytes_;
}

}  // namespace ckpt::serve::ui
