// Reading a sharded checkpoint at any world size (ckpt/sharded.hpp): one document whose tensors
// are assembled from their chunks.
//
// The folder is held open from the start and every file is opened relative to it, without
// following a link, and held: a save that replaces the folder meanwhile (RENAME_EXCHANGE) leaves
// this reader on the checkpoint it opened, never a mix of two, and a name swapped for a link
// after the check is not followed. Plugins are given the held descriptors' own files
// (/proc/self/fd/N), and their messages are renamed back to the shards' names.
#include "sharded_index.hpp"
#include "shards.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/errors_renamed.hpp>
#include <ckpt/integrity.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::sharded {

namespace {

// Descriptors held for a reader's lifetime.
struct Held {
  std::vector<int> fds;
  ~Held() {
    for (int fd : fds) ::close(fd);
  }
};

// `name` inside the folder `dir` (held as `dirfd`), a regular file and not a link, held open.
int open_inside(int dirfd, const fs::path& dir, const std::string& name, const std::string& source) {
  const int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ELOOP) throw FormatError(source + ": '" + name + "' is a link; the files of a sharded checkpoint are read only from its own folder");
    throw FormatError(source + ": cannot open '" + (dir / name).string() + "': " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FormatError(source + ": '" + (dir / name).string() + "' is not a regular file");
  }
  return fd;
}

std::string read_held(int fd, uint64_t max, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw IoError(what + ": " + std::strerror(errno));
  if (static_cast<uint64_t>(st.st_size) > max)
    throw FormatError(what + ": " + std::to_string(st.st_size) + " bytes, more than an index may hold (" + std::to_string(max) + ")");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t at = 0;
  while (at < text.size()) {
    const ssize_t n = ::pread(fd, text.data() + at, text.size() - at, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(what + ": cannot read it: " + (n < 0 ? std::strerror(errno) : "it shrank"));
    at += static_cast<size_t>(n);
  }
  return text;
}

}  // namespace

std::shared_ptr<FormatReader> open(const fs::path& folder, const LoadOptions& options) {
  const fs::path index_path = folder / kIndexName;
  const std::string source = "'" + index_path.string() + "'";
  auto held = std::make_shared<Held>();
  const int dirfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) throw IoError("cannot open the folder '" + folder.string() + "': " + std::strerror(errno));
  held->fds.push_back(dirfd);
  // Hugging Face's loaders read a folder by its own index: a folder with both is two checkpoints.
  for (const char* other : {::ckpt::detail::kShardIndex, "model.safetensors"})
    if (::faccessat(dirfd, other, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
      throw FormatError("'" + folder.string() + "' holds both " + kIndexName + " and " + other +
                        " (two checkpoints: ckpt reads one, Hugging Face's loaders the other)");
  const int index_fd = open_inside(dirfd, folder, kIndexName, "'" + folder.string() + "'");
  held->fds.push_back(index_fd);
  auto index = std::make_shared<const detail::Index>(
      detail::parse_index(read_held(index_fd, detail::kMaxIndexBytes, source), source));
  const Registry& reg = options.registry ? *options.registry : Registry::global();
  const Format format = reg.get(index->shard_format);
  if (index->world != index->shards.size())
    throw FormatError(source + ": world " + std::to_string(index->world) + " but " + std::to_string(index->shards.size()) + " shards");

  // Every shard, opened now and held: a consistent snapshot, checked before any of it is used.
  // Per shard, the chunks the index gives it: it holds exactly those tensors.
  std::vector<std::map<std::string, std::pair<const detail::IndexTensor*, const detail::IndexChunk*>>> expected(index->shards.size());
  for (const auto& t : index->tensors)
    for (const auto& c : t.chunks)
      if (!expected[c.shard].emplace(c.name, std::make_pair(&t, &c)).second)
        throw FormatError(source + ": '" + t.path + "': shard " + std::to_string(c.shard) + " holds chunk '" + c.name + "' twice");
  std::vector<std::shared_ptr<FormatReader>> parts;
  std::vector<std::pair<std::string, std::string>> names;  // descriptor path -> shard path
  for (size_t k = 0; k < index->shards.size(); ++k) {
    const auto& [file, bytes] = index->shards[k];
    const fs::path path = folder / file;
    const int fd = open_inside(dirfd, folder, file, source + ": shard '" + file + "'");
    held->fds.push_back(fd);
    struct stat st {};
    ::fstat(fd, &st);
    if (static_cast<uint64_t>(st.st_size) != bytes)
      throw FormatError(source + ": shard '" + file + "' holds " + std::to_string(st.st_size) + " bytes, the index says " + std::to_string(bytes));
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    names.emplace_back(proc, path.string());
    std::shared_ptr<FormatReader> r;
    try {
      r = format.open_reader(proc, options.format_options);
      reg.check_one_reading(proc, format);
      size_t found = 0;
      r->tree().for_each_tensor([&](const std::string& p, const Tensor& t) {
        const auto it = expected[k].find(p);
        if (it == expected[k].end()) throw FormatError("'" + path.string() + "' holds '" + p + "', which the index does not name");
        const auto& [whole, chunk] = it->second;
        if (t.dtype() != whole->dtype || t.shape() != chunk->box.sizes)
          throw FormatError("'" + path.string() + "' at " + p + ": " + std::string(name(t.dtype())) + " " + shape_string(t.shape()) +
                            ", the index says a chunk " + std::string(name(whole->dtype)) + " " + shape_string(chunk->box.sizes));
        ++found;
      });
      if (found != expected[k].size())
        for (const auto& [n, c] : expected[k])
          if (!r->tree().find_tensor_path(n)) throw FormatError("'" + path.string() + "' lacks '" + n + "', which the index puts there");
    } catch (...) {
      rethrow_renamed([&](std::string text) { return replace_path(std::move(text), proc, path.string()); });
    }
    parts.push_back(std::move(r));
  }

  // The document is the index's; each tensor's chunks, in its for_each_tensor order.
  Document tree = index->document;
  std::map<std::string, const detail::IndexTensor*> by_path;
  for (const auto& t : index->tensors) by_path.emplace(t.path, &t);
  std::vector<std::vector<FormatReader::ChunkRef>> chunks;
  tree.for_each_tensor([&](const std::string& p, const Tensor&) {
    std::vector<FormatReader::ChunkRef> refs;
    for (const auto& c : by_path.at(p)->chunks) refs.push_back({c.shard, c.name, c.box.offsets, c.box.sizes, c.xxh3});
    chunks.push_back(std::move(refs));
  });
  auto reader = FormatReader::chunked(
      folder, format.info(), std::move(tree), std::move(chunks), parts.size(),
      [parts, held](size_t k) { return parts.at(k); },
      [index, parts, names](uint64_t& tensors, uint64_t& bytes) {
        std::vector<std::string> problems;
        for (const auto& t : index->tensors) {
          ++tensors;
          for (const auto& c : t.chunks) {
            try {
              std::optional<Tensor> m = parts[c.shard]->map(c.name);
              if (!m) m = parts[c.shard]->read(c.name);
              bytes += m->nbytes();
              if (const std::string h = hash_hex(hash_bytes(m->bytes())); h != c.xxh3)
                problems.push_back(t.path + ": chunk '" + c.name + "' of shard '" + index->shards[c.shard].first + "' has hash " + h +
                                   ", the index records " + c.xxh3);
            } catch (const Error& e) {
              std::string text = e.what();
              for (const auto& [from, to] : names) text = replace_path(std::move(text), from, to);
              problems.push_back(t.path + ": " + text);
            }
          }
        }
        return problems;
      },
      names);
  return reader;
}

}  // namespace ckpt::sharded
