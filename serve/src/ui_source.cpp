#include "ui_source.hpp"

#include "training_names.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include <algorithm>
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

OpenedCheckpoint OpenedCheckpoint::from_file(const fs::path& file) {
  OpenedCheckpoint c;
  c.file_ = file;
  c.label_ = file.string();
  c.reader_ = ckpt::open(file);
  c.reader_->tree();  // list now, so a damaged file fails here, in one place
  return c;
}

OpenedCheckpoint OpenedCheckpoint::from_memory(const Checkpoint& checkpoint, std::string label) {
  OpenedCheckpoint c;
  c.label_ = std::move(label);
  c.memory_ = std::make_shared<Document>(checkpoint.to_document());
  return c;
}

const Document& OpenedCheckpoint::tree() const { return reader_ ? reader_->tree() : *memory_; }

std::string OpenedCheckpoint::format() const { return reader_ ? reader_->format().name : std::string("memory"); }

const Tensor* OpenedCheckpoint::find_tensor(const std::string& path) const {
  if (path.empty() || path.front() == '/' || path.back() == '/') return nullptr;
  return tree().find_tensor_path(path);
}

std::span<const std::byte> OpenedCheckpoint::bytes(const std::string& path, const Tensor& listed,
                                                   std::vector<std::byte>& buffer, std::optional<Tensor>& mapped) const {
  if (!reader_) {
    if (!listed.defined()) throw UsageError("'" + label_ + "' at " + path + ": the served checkpoint holds no data for this tensor");
    return listed.bytes();
  }
  mapped = reader_->map(path);
  if (mapped) return mapped->bytes();
  buffer.resize(listed.nbytes());
  reader_->read_into(listed, path, buffer);
  return buffer;
}

OpenedCheckpoint Resolved::open() const {
  if (!file.empty()) return OpenedCheckpoint::from_file(file);
  if (!served.checkpoint) throw HttpError(404, "checkpoint '" + served.model + "' has neither a file nor a loaded checkpoint");
  return OpenedCheckpoint::from_memory(*served.checkpoint, label());
}

std::string Resolved::label() const {
  std::string s = served.model;
  if (!file_name.empty()) s += " / " + file_name;
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
    r.file = it->path;
    return r;
  }
  // Only a name the listing gave back: never a path the request makes up.
  auto f = std::find_if(files.begin(), files.end(), [&](const FolderFile& x) { return x.name == file; });
  if (f == files.end()) throw HttpError(404, "'" + model + "' has no checkpoint file named '" + file + "'");
  r.file = fs::path(it->source) / f->name;
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
