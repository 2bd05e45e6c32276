#include "external_data.hpp"

#include "onnx_layout.hpp"
#include "text.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_confined.hpp>
#include <ckpt/sdk_io.hpp>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sys/stat.h>
#include <sys/syscall.h>

namespace ckpt_onnx {

using ckpt::sdk::fail;
using ckpt::sdk::os_error;
namespace fs = std::filesystem;

// ---- reading ----

ExternalFiles::ExternalFiles(std::string model_path) : model_path_(std::move(model_path)) {
  fs::path folder = fs::path(model_path_).parent_path();
  folder_ = folder.empty() ? "." : folder.string();
}

const ckpt::sdk::MappedFile& ExternalFiles::open(const std::string& location, const std::string& what) {
  if (auto it = files_.find(location); it != files_.end()) return *it->second;
  const std::string where = "'" + model_path_ + "': " + what + ": external data location " +
                            quote_text(location) + " is refused: ";
  std::string problem;
  int err = 0;
  const int fd = ckpt::sdk::open_confined(folder_, location, problem, err);
  if (fd < 0) {
    if (err == ENOENT)
      fail(CKPT_ERR_NOT_FOUND, "'" + model_path_ + "': " + what + ": external data file " +
                                   quote_text(location) + " does not exist beside the model");
    fail(CKPT_ERR_FORMAT, where + problem);
  }
  auto file = std::make_unique<ckpt::sdk::MappedFile>(fd, (fs::path(folder_) / location).string());
  return *files_.emplace(location, std::move(file)).first->second;
}

// ---- the header ----

std::string header_bytes(const ExternalHeader& h) {
  std::string out(kExternalMagic);
  for (uint64_t v : {h.hash, h.bytes})
    for (int k = 0; k < 8; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
  return out;
}

bool parse_header(std::span<const std::byte> head, ExternalHeader& out) {
  const size_t n = kExternalMagic.size();
  if (head.size() < n + 16 || std::memcmp(head.data(), kExternalMagic.data(), n) != 0) return false;
  auto le = [&](size_t at) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(head[at + static_cast<size_t>(k)]);
    return v;
  };
  out.hash = le(n);
  out.bytes = le(n + 8);
  return true;
}

// ---- writing ----

ExternalWriter::ExternalWriter(std::string temp_path) : temp_(std::move(temp_path)) {
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(CKPT_ERR_IO, os_error("cannot create", temp_));
  // Its name is one of the host's temporaries plus ".data"; the host's sweep of stale
  // temporaries (and `ckpt gc`) takes an unlocked one for a dead writer's, so it carries the
  // same open-file-description lock as the model's temporary. Without lock support the save
  // still works.
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  (void)::fcntl(fd_, F_OFD_SETLK, &lock);
  hash_ = XXH3_createState();
  if (!hash_) throw std::bad_alloc();
  XXH3_64bits_reset(hash_);
  static const std::array<char, kExternalAlignment> zeros{};
  write_all(zeros.data(), zeros.size());  // the header's page, filled in by finish()
  offset_ = kExternalAlignment;
}

ExternalWriter::~ExternalWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
  XXH3_freeState(hash_);
}

void ExternalWriter::write_all(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd_, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(CKPT_ERR_IO, os_error("cannot write", temp_));
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
}

uint64_t ExternalWriter::append(std::span<const std::byte> data) {
  static const std::array<char, kExternalAlignment> zeros{};
  const uint64_t pad = (kExternalAlignment - offset_ % kExternalAlignment) % kExternalAlignment;
  write_all(zeros.data(), pad);
  XXH3_64bits_update(hash_, zeros.data(), pad);
  const uint64_t at = offset_ + pad;
  write_all(data.data(), data.size());
  XXH3_64bits_update(hash_, data.data(), data.size());
  offset_ = at + data.size();
  return at;
}

ExternalHeader ExternalWriter::seal() {
  ExternalHeader h{XXH3_64bits_digest(hash_), offset_};
  const std::string head = header_bytes(h);
  if (::pwrite(fd_, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()))
    fail(CKPT_ERR_IO, os_error("cannot write", temp_));
  // The host syncs the model file it knows of; this one only we know of.
  if (::fsync(fd_) != 0) fail(CKPT_ERR_IO, os_error("cannot sync", temp_));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(CKPT_ERR_IO, os_error("cannot close", temp_));
  sealed_ = true;
  return h;
}

void ExternalWriter::commit(const std::string& final_) {
  if (!sealed_) fail(CKPT_ERR_INTERNAL, "external data committed before it was sealed");
  // A file of that name holds these very bytes (the name is their hash): replacing it changes
  // nothing for a model that uses it.
  if (::rename(temp_.c_str(), final_.c_str()) != 0) fail(CKPT_ERR_IO, os_error("cannot rename into place", final_));
  committed_ = true;
  // The name must be durable before the host's rename makes the model that uses it visible.
  const fs::path parent = fs::path(final_).parent_path();
  const std::string folder = parent.empty() ? "." : parent.string();
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) fail(CKPT_ERR_IO, os_error("cannot open the folder of", final_));
  const int rc = ::fsync(dir);
  ::close(dir);
  if (rc != 0) fail(CKPT_ERR_IO, os_error("cannot sync the folder of", final_));
}

namespace {
constexpr std::string_view kTempMarker = ".ckpt-tmp-";

bool is_tag(std::string_view s) {
  if (s.size() != kDataTagLength) return false;
  for (char ch : s)
    if (!std::isxdigit(static_cast<unsigned char>(ch))) return false;
  return true;
}
}  // namespace

std::string committed_name(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  const size_t at = name.rfind(kTempMarker);
  if (name.size() > 1 && name[0] == '.' && at != std::string::npos && at > 1) return name.substr(1, at - 1);
  return name;
}

std::string data_file_name(const std::string& model_name, uint64_t hash) {
  char tag[kDataTagLength + 1];
  std::snprintf(tag, sizeof tag, "%016llx", static_cast<unsigned long long>(hash));
  return model_name + "." + tag + std::string(kExternalSuffix);
}

void remove_stale_data(const std::string& model, const std::string& keep) {
  const fs::path path(model);
  const fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string model_name = path.filename().string();
  // "<model>.data" (what versions before content-named data files wrote), or
  // "<model>.<tag>.data".
  auto ours_by_name = [&](const std::string& name) {
    const std::string legacy = model_name + std::string(kExternalSuffix);
    if (name == legacy) return true;
    if (name.size() <= legacy.size() + 1 || !name.starts_with(model_name + ".") || !name.ends_with(kExternalSuffix))
      return false;
    return is_tag(std::string_view(name).substr(model_name.size() + 1,
                                                name.size() - legacy.size() - 1));
  };
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == keep || !ours_by_name(name)) continue;
    // Only files that are ours: a regular file (not a link) that starts with our header.
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    std::array<std::byte, kExternalAlignment> head{};
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    const ssize_t got = regular ? ::pread(fd, head.data(), head.size(), 0) : -1;
    ::close(fd);
    ExternalHeader h;
    if (got == static_cast<ssize_t>(head.size()) && parse_header(head, h)) ::unlink(it->path().c_str());
  }
}

}  // namespace ckpt_onnx
