#include "ui_source.hpp"

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

// `text` with each descriptor path in `names` (/proc/self/fd/N -> what it is) replaced, where
// it is not the start of another one (/proc/self/fd/1 in /proc/self/fd/12).
using Names = std::vector<std::pair<std::string, std::string>>;
std::string renamed(std::string text, const Names& names) {
  for (const auto& [from, to] : names) {
    if (from.empty()) continue;
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
      const size_t end = at + from.size();
      if (end < text.size() && text[end] >= '0' && text[end] <= '9') {
        at = end;
        continue;
      }
      text.replace(at, from.size(), to);
      at += to.size();
    }
  }
  return text;
}

// Rethrows the exception being handled as the same type with its message renamed; anything
// else as it is.
[[noreturn]] void rethrow_renamed(const Names& names) {
  auto message = [&](const std::exception& e) { return renamed(e.what(), names); };
  try {
    throw;
  } catch (const HttpError& e) {
    throw HttpError(e.status, message(e));
  } catch (const LimitError& e) {
    throw LimitError(message(e));
  } catch (const FormatError& e) {
    throw FormatError(message(e));
  } catch (const IntegrityError& e) {
    throw IntegrityError(message(e));
  } catch (const PluginError& e) {
    throw PluginError(message(e));
  } catch (const IoError& e) {
    throw IoError(message(e));
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(message(e));
  } catch (const UsageError& e) {
    throw UsageError(message(e));
  } catch (const Error& e) {
    throw Error(message(e));
  }
}

std::string os_error(const std::string& what, const fs::path& path) {
  return what + " '" + path.string() + "': " + std::strerror(errno);
}

}  // namespace

struct OpenedCheckpoint::Handle {
  int file = -1, signature = -1;
  Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (file >= 0) ::close(file);
    if (signature >= 0) ::close(signature);
  }
};

template <class F>
auto OpenedCheckpoint::named(F&& f) const -> decltype(f()) {
  if (open_path_ == file_) return f();
  try {
    return f();
  } catch (...) {
    rethrow_renamed(names());
  }
}

std::vector<std::pair<std::string, std::string>> OpenedCheckpoint::names() const {
  return {{open_path_.string(), file_.string()}, {signature_.string(), default_signature_path(file_).string()}};
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
  c.handle_ = std::make_shared<Handle>();
  // O_NONBLOCK: a FIFO put in the file's place is not waited on (refused below as not regular).
  c.handle_->file = ::open(c.file_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (c.handle_->file < 0) {
    if (errno == ELOOP) throw HttpError(404, "'" + c.file_.string() + "' is a link; the page does not follow links in a training folder");
    if (errno == ENOENT) throw HttpError(404, "'" + c.file_.string() + "' is gone (removed since the folder was listed)");
    throw IoError(os_error("cannot open", c.file_));
  }
  struct stat st{};
  if (::fstat(c.handle_->file, &st) != 0 || !S_ISREG(st.st_mode))
    throw HttpError(404, "'" + c.file_.string() + "' is not a regular file");
  // The reader opens the descriptor's own file through /proc, so the name cannot be swapped
  // for a link in between; the format is chosen from the name, as the manager wrote it.
  c.open_path_ = "/proc/self/fd/" + std::to_string(c.handle_->file);
  const fs::path sig = default_signature_path(c.file_);
  c.handle_->signature = ::open(sig.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (c.handle_->signature >= 0) {
    c.signature_ = "/proc/self/fd/" + std::to_string(c.handle_->signature);
  } else {
    c.signature_absent_ = true;
    if (errno == ELOOP) c.signature_problem_ = "'" + sig.string() + "' is a link; the page does not follow links in a training folder";
  }
  c.named([&] {
    Format format = [&] {
      try {
        return Registry::global().for_writing(c.file_, "auto");
      } catch (const Error&) {
        return Registry::global().for_reading(c.open_path_, "auto");  // no extension a writer claims: by content
      }
    }();
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
    if (open_path_ != file_) {
      for (auto& p : r.problems) p = renamed(p, names());
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
