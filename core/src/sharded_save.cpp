// Writing a sharded checkpoint: each rank's shard, rank 0's commit (ckpt/sharded.hpp).
#include "atomic_file.hpp"
#include "atomic_write.hpp"
#include "sharded_index.hpp"
#include "shards.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/skeleton_text.hpp>
#include <ckpt/write_source.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::sharded {

namespace {

const Registry& registry_of(const SaveSpec& spec) { return spec.registry ? *spec.registry : Registry::global(); }

bool hugging_face(const SaveSpec& spec) { return spec.layout == Layout::hugging_face; }

Format format_of(const SaveSpec& spec) {
  Format f = registry_of(spec).for_writing(spec.target, spec.format);  // an unknown or unwritable format fails here
  if (hugging_face(spec) && f.name() != "safetensors")
    throw UsageError("a sharded checkpoint is written as safetensors (Hugging Face's layout), not " + f.name());
  return f;
}

std::string shard_file(const SaveSpec& spec, size_t rank, const FormatInfo& info) {
  if (hugging_face(spec)) return spec.world == 1 ? "model.safetensors" : ::ckpt::detail::shard_name(rank, spec.world);
  char buf[64];
  std::snprintf(buf, sizeof buf, "shard-%05zu-of-%05zu", rank, spec.world);
  return std::string(buf) + (info.extensions.empty() ? "" : info.extensions.front());
}

// The names Hugging Face's layout writes in its folder: a save replaces these and keeps every
// other file ("model-00001-of-00002.safetensors.bak" is the user's).
bool hugging_face_name(const std::string& n) {
  if (n == "model.safetensors" || n == ::ckpt::detail::kShardIndex) return true;
  if (n.size() != 32 || n.rfind("model-", 0) != 0 || n.compare(11, 4, "-of-") != 0 || !n.ends_with(".safetensors")) return false;
  for (size_t i : {6, 7, 8, 9, 10, 15, 16, 17, 18, 19})
    if (!std::isdigit(static_cast<unsigned char>(n[i]))) return false;
  return true;
}

// A shard of Hugging Face's layout: `skeleton` with only the tensors in `mine`; past the first
// shard, only meta's strings beside them (what Hugging Face's writer puts in every shard's
// __metadata__, where its loaders require "format": "pt").
Document hugging_face_shard(const Document& skeleton, const std::set<std::string>& mine, bool first) {
  Document shard = skeleton;
  std::function<bool(Group&, const std::string&)> keep = [&](Group& g, const std::string& prefix) {
    if (!first) {
      std::vector<std::string> attrs;
      for (const auto& a : g.attributes())
        if (prefix != "meta" || value_type(a.value) != ValueType::string) attrs.push_back(a.name);
      for (const auto& a : attrs) g.erase_attribute(a);
    }
    std::vector<std::string> gone;
    for (auto& c : g.children()) {
      const std::string p = join_path(prefix, c.name);
      if (c.is_group() ? !keep(c.group(), p) && !first : !mine.count(p)) gone.push_back(c.name);
    }
    for (const auto& n : gone) g.erase(n);
    return !g.attributes().empty() || !g.children().empty();
  };
  keep(shard, "");
  return shard;
}

// The group at the '/'-separated `dir` under `root`, made where missing.
Group& group_at(Group& root, const std::string& dir, const std::string& what) {
  Group* g = &root;
  size_t at = 0;
  while (at < dir.size()) {
    const size_t slash = dir.find('/', at);
    const std::string part = dir.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
    if (part.empty()) throw UsageError(what + ": an empty name in its path");
    if (const Node* n = g->find(part); n && !n->is_group()) throw UsageError(what + ": '" + part + "' in its path is a tensor");
    g = &g->group(part);
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  return *g;
}

void check_world(const SaveSpec& spec, size_t rank) {
  if (spec.world == 0) throw UsageError("a sharded save of world size 0");
  if (rank >= spec.world)
    throw UsageError("rank " + std::to_string(rank) + " of a sharded save of world size " + std::to_string(spec.world));
}

}  // namespace

namespace {

// The folder a target names: "out/", "." and a symlink to a folder each name one, and the
// staging folder must sit beside it (not inside, where "." would put it), where every rank finds it.
fs::path folder_named(const fs::path& target) {
  std::error_code ec;
  fs::path t = fs::weakly_canonical(target, ec);
  if (ec) t = target;
  if (!t.has_filename()) t = t.parent_path();
  return t;
}

// One entry of the folder a Hugging Face save replaces, kept in the new folder: a hard link (the
// same file), or a copy where the file system refuses the link (protected_hardlinks, a file
// system without links); a folder is made afresh with the old one's mode and owner, once filled.
// Another file system mounted below is refused: it would be copied whole.
void keep_entry(const fs::path& from, const fs::path& to, dev_t device, bool durable) {
  struct stat st {};
  if (::lstat(from.c_str(), &st) != 0) {
    if (errno == ENOENT) return;  // gone since it was listed
    throw IoError("cannot keep '" + from.string() + "' in the new checkpoint: " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != device)
      throw IoError("cannot keep '" + from.string() + "' in the new checkpoint: another file system is mounted there; " +
                    "save the shards to a folder of their own");
    if (::mkdir(to.c_str(), 0700) != 0)
      throw IoError("cannot keep '" + from.string() + "' in the new checkpoint (making '" + to.string() + "'): " + std::strerror(errno));
    std::error_code ec;
    for (fs::directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec))
      keep_entry(it->path(), to / it->path().filename(), device, durable);
    if (ec) throw IoError("cannot list '" + from.string() + "': " + ec.message());
    if (durable) ::ckpt::detail::fsync_dir(to);
    (void)::lchown(to.c_str(), st.st_uid, st.st_gid);  // only root may give a folder away: best effort
    ::chmod(to.c_str(), st.st_mode & 07777);
    return;
  }
  if (::link(from.c_str(), to.c_str()) == 0) return;
  const int e = errno;
  if (e != EPERM && e != EXDEV && e != EMLINK && e != EOPNOTSUPP)
    throw IoError("cannot keep '" + from.string() + "' in the new checkpoint (a hard link into '" + to.parent_path().string() +
                  "'): " + std::strerror(e));
  std::error_code ec;
  if (S_ISREG(st.st_mode)) {
    fs::copy_file(from, to, ec);
    if (!ec) ::chmod(to.c_str(), st.st_mode & 07777);
  } else if (S_ISLNK(st.st_mode)) {
    fs::copy_symlink(from, to, ec);
  } else if (S_ISFIFO(st.st_mode)) {
    if (::mkfifo(to.c_str(), st.st_mode & 07777) != 0) ec = std::error_code(errno, std::generic_category());
  } else {
    ec = std::error_code(e, std::generic_category());
  }
  if (ec)
    throw IoError("cannot keep '" + from.string() + "' in the new checkpoint: it can be neither linked (" + std::strerror(e) +
                  ") nor copied (" + ec.message() + ")");
}

}  // namespace

fs::path staging_folder(const fs::path& target) {
  const fs::path t = folder_named(target);
  return t.parent_path() / ("." + t.filename().string() + ::ckpt::detail::kTempMarker + "shards");
}

namespace {
constexpr const char* kLockName = ".lock";
}

Stage::Stage(SaveSpec spec) : spec_(std::move(spec)), staging_(staging_folder(spec_.target)) {
  spec_.target = folder_named(spec_.target);
  check_world(spec_, 0);
  format_of(spec_);
  std::error_code ec;
  // `ckpt convert SRC a/b/out --max-shard-size` has always made a/b, as Hugging Face's writer does.
  if (const fs::path parent = staging_.parent_path(); hugging_face(spec_) && !parent.empty() && !fs::create_directories(parent, ec) && ec)
    throw IoError("cannot create the folder '" + parent.string() + "': " + ec.message());
  if (const fs::path parent = staging_.parent_path(); !parent.empty() && !fs::is_directory(parent, ec))
    throw IoError("cannot save to '" + spec_.target.string() + "': its folder does not exist");
  // A save replaces a sharded checkpoint of that name whole, so the target is one, or an empty
  // folder, or nothing: never a folder of other files, which the replacement would delete.
  // Hugging Face's layout keeps the folder's other files (a model's folder holds its config and
  // tokenizer, often a pytorch_model.bin the shards are made from), so any folder will do.
  if (const auto st = fs::symlink_status(spec_.target, ec); st.type() != fs::file_type::not_found) {
    if (!fs::is_directory(st))
      throw UsageError("cannot save a sharded checkpoint to '" + spec_.target.string() +
                       "': it exists and is not a folder (a sharded checkpoint is a folder)");
    if (hugging_face(spec_) && is_sharded(spec_.target))
      throw UsageError("'" + spec_.target.string() + "' is a sharded checkpoint of ckpt's (" + kIndexName +
                       "); Hugging Face's shards beside it would make two checkpoints of one folder");
    if (!hugging_face(spec_) && !is_sharded(spec_.target) && !fs::is_empty(spec_.target, ec))
      throw UsageError("cannot save a sharded checkpoint to '" + spec_.target.string() +
                       "': it is a folder holding other files, not a sharded checkpoint, and a save replaces the "
                       "whole folder (name a new or empty folder)");
  }
  // A staging folder left by a killed save: its lock died with its writer. One whose lock is
  // held is another save of the same name, still running.
  if (fs::symlink_status(staging_, ec).type() != fs::file_type::not_found) {
    const int fd = ::open((staging_ / kLockName).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    const int rc = fd >= 0 ? ::ckpt::detail::ofd_lock(fd, F_RDLCK) : 0;
    if (fd >= 0) ::close(fd);
    if (rc == EAGAIN)
      throw IoError("cannot save to '" + spec_.target.string() + "': another save of it is running (its staging folder '" +
                    staging_.string() + "' is locked)");
    fs::remove_all(staging_, ec);
    if (ec) throw IoError("cannot remove the stale staging folder '" + staging_.string() + "': " + ec.message());
  }
  // Made under another name and locked before it takes the staging name, so that a sweep never
  // finds the staging folder without its lock.
  const fs::path fresh = staging_.string() + "-init-" + ::ckpt::detail::random_name_suffix();
  if (!fs::create_directory(fresh, ec) || ec)
    throw IoError("cannot create '" + fresh.string() + "': " + (ec ? ec.message() : std::string("it exists")));
  lock_fd_ = ::open((fresh / kLockName).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    const int e = errno;
    fs::remove_all(fresh, ec);
    throw IoError("cannot create '" + (fresh / kLockName).string() + "': " + std::strerror(e));
  }
  ::ckpt::detail::ofd_lock(lock_fd_, F_WRLCK);  // ENOLCK: no locks here; gc falls back on age
  if (::rename(fresh.c_str(), staging_.c_str()) != 0) {
    const int e = errno;
    fs::remove_all(fresh, ec);
    throw IoError("cannot rename '" + fresh.string() + "' to '" + staging_.string() + "': " + std::strerror(e));
  }
}

Stage::~Stage() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

ShardRecord write_shard(const SaveSpec& spec, size_t rank, const Document& skeleton, const std::vector<Item>& items,
                        const std::vector<size_t>& planned, const ItemBytes& bytes) {
  check_world(spec, rank);
  const Format format = format_of(spec);
  const fs::path staging = staging_folder(spec.target);
  ShardRecord record;
  record.rank = rank;
  record.file = shard_file(spec, rank, format.info());
  // The index holds the document's skeleton as JSON: one that JSON cannot hold (a name that is
  // not UTF-8) is refused here, before any rank writes, not by rank 0's commit after all did.
  if (!hugging_face(spec)) skeleton_text(skeleton, "ckpt-sharded", 1, [](const std::string&) { return std::string(); });
  // ckpt's shard lists each chunk and nothing else (the groups and attributes are the index's);
  // Hugging Face's is the document cut down to its tensors. Bytes are asked for as the writer
  // reaches each, so a rank holds one chunk's bytes at a time beyond its own (a mapping is not
  // copied).
  Document doc;
  std::map<std::string, size_t> item_of;  // chunk name -> index into items
  for (size_t i : planned) {
    const Item& it = items.at(i);
    const std::string what = "rank " + std::to_string(rank) + ": '" + it.path + "'";
    const Tensor* whole = skeleton.find_tensor_path(it.path);
    if (!whole || whole->dtype() != it.dtype || whole->shape() != it.shape)
      throw UsageError(what + ": " + (whole ? "the document holds it as " + std::string(name(whole->dtype())) + " " +
                                                  shape_string(whole->shape())
                                            : std::string("not a tensor of the document")));
    const std::string name = detail::chunk_name(it.path, it.box, it.shape);
    if (hugging_face(spec)) {
      if (name != it.path) throw UsageError(what + ": a part of a tensor (Hugging Face's layout holds tensors whole)");
      if (!item_of.emplace(name, i).second) throw UsageError(what + ": planned twice");
      continue;
    }
    const size_t slash = name.rfind('/');
    Group& g = group_at(doc, slash == std::string::npos ? std::string() : name.substr(0, slash), what);
    const std::string leaf = slash == std::string::npos ? name : name.substr(slash + 1);
    if (g.find(leaf)) throw UsageError(what + ": its chunk's name '" + name + "' is taken in the shard");
    g.add_tensor(leaf, Tensor(it.dtype, Shape(it.box.sizes.begin(), it.box.sizes.end()), nullptr));
    item_of.emplace(name, i);
  }
  SaveOptions so;
  so.format_options = spec.format_options;
  so.fsync = spec.fsync;
  if (hugging_face(spec)) {
    std::set<std::string> mine;
    for (const auto& [name, i] : item_of) mine.insert(name);
    doc = hugging_face_shard(skeleton, mine, rank == 0);
    if (std::none_of(so.format_options.begin(), so.format_options.end(), [](const auto& o) { return o.first == "aliases"; }))
      so.format_options.emplace_back("aliases", "off");
  }
  std::map<std::string, std::string> hashes;
  const fs::path file = staging / record.file;
  write_document(doc, [&](const std::string& name, const Tensor& listed) -> std::span<const std::byte> {
    const auto it = item_of.find(name);
    if (it == item_of.end()) throw Error("rank " + std::to_string(rank) + ": the shard writer asked for '" + name + "', no chunk");
    const Item& item = items[it->second];
    const std::span<const std::byte> b = bytes(item);
    if (b.size() != listed.nbytes())
      throw UsageError("rank " + std::to_string(rank) + ": '" + item.path + "': " + std::to_string(b.size()) +
                       " bytes given for a box of " + std::to_string(listed.nbytes()));
    hashes[name] = hash_hex(hash_bytes(b));
    return b;
  }, file, format, so);
  for (const auto& [name, i] : item_of) {
    const auto h = hashes.find(name);
    if (h == hashes.end()) throw Error("rank " + std::to_string(rank) + ": the shard writer never asked for '" + name + "'");
    record.chunks.push_back({items[i].path, items[i].box, name, h->second});
  }
  std::error_code ec;
  record.bytes = fs::file_size(file, ec);
  if (ec) throw IoError("cannot read the size of '" + file.string() + "': " + ec.message());
  return record;
}

void Stage::commit(const Document& skeleton, const std::vector<ShardRecord>& records) {
  if (committed_) throw UsageError("'" + spec_.target.string() + "': the save is committed already");
  const Format format = format_of(spec_);
  detail::Index index;
  index.document = skeleton;
  index.shard_format = format.name();
  index.world = spec_.world;
  if (records.size() != spec_.world)
    throw UsageError("'" + spec_.target.string() + "': " + std::to_string(records.size()) + " shard records for " +
                     std::to_string(spec_.world) + " ranks");
  // Chunks by tensor path, checked against the staged files.
  std::map<std::string, std::vector<detail::IndexChunk>> chunks;
  for (size_t r = 0; r < records.size(); ++r) {
    const ShardRecord& rec = records[r];
    const std::string what = "'" + spec_.target.string() + "': rank " + std::to_string(r) + "'s record";
    if (rec.rank != r) throw UsageError(what + " is rank " + std::to_string(rec.rank) + "'s");
    if (rec.file != shard_file(spec_, r, format.info())) throw UsageError(what + " names the file '" + rec.file + "'");
    std::error_code ec;
    const uint64_t size = fs::file_size(staging_ / rec.file, ec);
    if (ec || size != rec.bytes)
      throw IoError(what + ": its shard '" + (staging_ / rec.file).string() + "' " +
                    (ec ? "cannot be read: " + ec.message() : "holds " + std::to_string(size) + " bytes, not " + std::to_string(rec.bytes)));
    index.shards.emplace_back(rec.file, rec.bytes);
    for (const auto& c : rec.chunks) chunks[c.path].push_back({c.box, r, c.name, c.xxh3});
  }
  uint64_t total = 0;
  skeleton.for_each_tensor([&](const std::string& path, const Tensor& t) {
    total += t.nbytes();
    auto it = chunks.find(path);
    if (it == chunks.end()) throw UsageError("'" + spec_.target.string() + "': no rank wrote '" + path + "'");
    std::vector<const Box*> boxes;
    for (const auto& c : it->second) boxes.push_back(&c.box);
    detail::check_cover(t.shape(), t.dtype(), boxes, "'" + spec_.target.string() + "': '" + path + "' as written");
    if (hugging_face(spec_) && boxes.size() != 1)
      throw UsageError("'" + spec_.target.string() + "': '" + path + "' written in " + std::to_string(boxes.size()) +
                       " parts (Hugging Face's layout holds tensors whole)");
    index.tensors.push_back({path, t.dtype(), t.shape(), std::move(it->second)});
    chunks.erase(it);
  });
  if (!chunks.empty())
    throw UsageError("'" + spec_.target.string() + "': rank " + std::to_string(chunks.begin()->second.front().shard) +
                     " wrote '" + chunks.begin()->first + "', which the document does not hold");
  const fs::path& target = spec_.target;  // the folder itself (folder_named)
  std::error_code ec;
  std::optional<mode_t> folder_mode;
  if (!hugging_face(spec_)) {
    ::ckpt::detail::write_text_atomically(staging_ / kIndexName, detail::index_text(index), spec_.fsync);
  } else {
    if (spec_.world > 1) {
      std::vector<std::pair<std::string, std::string>> weight_map;
      for (const detail::IndexTensor& t : index.tensors) weight_map.emplace_back(t.path, index.shards[t.chunks.front().shard].first);
      ::ckpt::detail::write_text_atomically(staging_ / ::ckpt::detail::kShardIndex,
                                            ::ckpt::detail::shard_index_text(total, weight_map), spec_.fsync);
    }
    // The folder's other files (config.json, the tokenizer) go into the new folder as hard links:
    // the same files, present in the target throughout. The new folder takes the old one's mode
    // and owner: a private folder stays private.
    if (struct stat top {}; ::lstat(target.c_str(), &top) == 0 && S_ISDIR(top.st_mode)) {
      for (fs::directory_iterator it(target, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (hugging_face_name(n) || ::ckpt::detail::is_temp_name(n)) continue;
        keep_entry(it->path(), staging_ / n, top.st_dev, spec_.fsync);
      }
      if (ec) throw IoError("cannot list '" + target.string() + "': " + ec.message());
      (void)::lchown(staging_.c_str(), top.st_uid, top.st_gid);
      // Writable by its owner until the commit is done with it (the lock is removed, late
      // files moved in); the old mode exactly at the end.
      folder_mode = top.st_mode & 07777;
      ::chmod(staging_.c_str(), *folder_mode | S_IRWXU);
    }
  }
  if (spec_.fsync) ::ckpt::detail::fsync_dir(staging_);
  // Into place: a folder of that name (an earlier save of this step) is exchanged with the new
  // one in one step, then removed; readers see the old checkpoint or the new, never neither.
  if (fs::symlink_status(target, ec).type() == fs::file_type::not_found) {
    if (::rename(staging_.c_str(), target.c_str()) != 0)
      throw IoError("cannot rename '" + staging_.string() + "' to '" + target.string() + "': " + std::strerror(errno));
  } else {
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
      throw IoError("cannot exchange '" + staging_.string() + "' with '" + target.string() + "': " + std::strerror(errno));
    committed_ = true;
    // A file put into Hugging Face's folder since it was linked above follows it, not deleted.
    if (hugging_face(spec_)) {
      std::vector<std::string> late;
      std::error_code absent;  // set for a name the new folder lacks
      for (fs::directory_iterator it(staging_, ec), end; !ec && it != end; it.increment(ec))
        if (const std::string n = it->path().filename().string();
            !hugging_face_name(n) && fs::symlink_status(target / n, absent).type() == fs::file_type::not_found)
          late.push_back(n);
      for (const std::string& n : late) fs::rename(staging_ / n, target / n, ec);
    }
    fs::remove_all(staging_, ec);  // the earlier checkpoint, now under the staging name
  }
  committed_ = true;
  // The lock held the staging folder against sweeps up to the rename; the checkpoint needs none.
  fs::remove(target / kLockName, ec);
  ::close(lock_fd_);
  lock_fd_ = -1;
  if (folder_mode) ::chmod(target.c_str(), *folder_mode);
  if (spec_.fsync) ::ckpt::detail::fsync_dir(target.parent_path().empty() ? fs::path(".") : target.parent_path());
}

namespace {

// Every tensor of `doc` whole, in document order.
std::vector<Item> whole_tensors(const Document& doc) {
  std::vector<Item> items;
  doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
    items.push_back({path, t.dtype(), t.shape(), Box{std::vector<int64_t>(t.rank(), 0), t.shape()}, true});
  });
  return items;
}

// The protocol of one save in one process: shard r holds items[plan[r]].
void save_planned(const Document& doc, SaveSpec spec, const std::vector<Item>& items,
                  const std::vector<std::vector<size_t>>& plan, const TensorBytes& tensor_bytes) {
  TensorBytes bytes_of = tensor_bytes;
  if (!bytes_of) bytes_of = [&doc](const std::string& path) { return doc.find_tensor_path(path)->bytes(); };
  spec.world = plan.size();
  Stage stage(spec);
  std::vector<ShardRecord> records;
  for (size_t r = 0; r < plan.size(); ++r)
    records.push_back(write_shard(spec, r, doc, items, plan[r], [&](const Item& it) { return bytes_of(it.path); }));
  stage.commit(doc, records);
}

}  // namespace

void save_document(const Document& doc, const SaveSpec& spec, size_t shards, const TensorBytes& tensor_bytes) {
  if (shards == 0) throw UsageError("a sharded save into 0 shards");
  // Every tensor whole, offered by every shard as replicated: the planner then balances the
  // shards by bytes, as it balances ranks.
  const std::vector<Item> items = whole_tensors(doc);
  save_planned(doc, spec, items, plan_save(std::vector<std::vector<Item>>(shards, items)), tensor_bytes);
}

void save_document_by_size(const Document& doc, const SaveSpec& spec, uint64_t max_shard_bytes, const TensorBytes& tensor_bytes) {
  if (max_shard_bytes == 0) throw UsageError("a sharded save into shards of 0 bytes");
  const std::vector<Item> items = whole_tensors(doc);
  std::vector<uint64_t> sizes;
  for (const Item& it : items) sizes.push_back(it.nbytes());
  save_planned(doc, spec, items, ::ckpt::detail::plan_shards(sizes, max_shard_bytes), tensor_bytes);
}

bool is_sharded(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(path / kIndexName, ec);
}

}  // namespace ckpt::sharded
