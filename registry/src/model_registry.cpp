#include "blob_store.hpp"
#include "database.hpp"
#include "manifest.hpp"
#include "schema.hpp"
#include "work_pool.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/write_source.hpp>
#include <ckpt/registry/model_registry.hpp>
#include <ckpt/signature.hpp>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <pwd.h>
#include <random>
#include <set>
#include <thread>
#include <sys/mman.h>
#include <unistd.h>

namespace ckpt::model_registry {

using namespace detail;

namespace {

constexpr const char* kCkptVersion = "ckpt " CKPT_REGISTRY_CKPT_VERSION;
// A signature file is a few hundred bytes; a config a few KiB.
constexpr uint64_t kMaxSignatureBytes = 64 << 10;
constexpr uint64_t kMaxConfigBytes = 4 << 20;

std::string now_iso() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the compiler imagines in each field
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

std::string who() {
  std::string user;
  if (const passwd* pw = ::getpwuid(::geteuid())) user = pw->pw_name;
  if (user.empty()) user = "uid" + std::to_string(::geteuid());
  return user + "@" + host_name() + " pid " + std::to_string(::getpid());
}

const char* status_text(Status s) { return s == Status::pending ? "PENDING" : s == Status::ready ? "READY" : "DELETED"; }

Status parse_status(const std::string& s) {
  if (s == "PENDING") return Status::pending;
  if (s == "READY") return Status::ready;
  if (s == "DELETED") return Status::deleted;
  throw FormatError("registry database: unknown version status '" + s + "'");
}

std::string read_text_file(const fs::path& path, uint64_t limit, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw UsageError(what + " " + path.string() + " is not a regular file");
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw IoError("cannot read " + what + " " + path.string() + ": " + ec.message());
  if (size > limit)
    throw LimitError(what + " " + path.string() + " holds " + std::to_string(size) + " bytes, more than the " +
                     std::to_string(limit) + " the registry keeps");
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) throw IoError("cannot read " + what + " " + path.string());
  return text;
}

std::string digest_of(const std::string& text) {
  return blake2b256_hex(std::as_bytes(std::span(text.data(), text.size())));
}

// Numbers of trainer/metrics (and any number-valued attribute of a top-level `metrics` group).
void collect_metrics(const Document& tree, std::vector<std::pair<std::string, double>>& out) {
  for (const char* path : {"trainer/metrics", "metrics"}) {
    const Group* g = tree.find_group_path(path);
    if (!g) continue;
    for (const auto& a : g->attributes()) {
      if (auto* d = std::get_if<double>(&a.value))
        out.emplace_back(a.name, *d);
      else if (auto* i = std::get_if<int64_t>(&a.value))
        out.emplace_back(a.name, static_cast<double>(*i));
    }
  }
}

std::optional<int64_t> int_attr(const Document& tree, const char* group, const char* key) {
  const Group* g = tree.find_group_path(group);
  const Value* v = g ? g->attribute(key) : nullptr;
  if (v)
    if (auto* i = std::get_if<int64_t>(v)) return *i;
  return std::nullopt;
}

std::string str_attr(const Document& tree, const char* group, const char* key) {
  const Group* g = tree.find_group_path(group);
  const Value* v = g ? g->attribute(key) : nullptr;
  if (v)
    if (auto* s = std::get_if<std::string>(v)) return *s;
  return {};
}

// The manifest digest of a checkpoint file: what its version's digest would be if registered.
std::string file_content_digest(const fs::path& file) {
  auto reader = ckpt::open(file);
  std::unordered_map<std::string, std::string> digests;
  reader->for_each_tensor_bytes([&](const std::string& path, const Tensor&, std::span<const std::byte> bytes) {
    digests[path] = blake2b256_hex(bytes);
  });
  return digest_of(encode_manifest(reader->tree(), digests));
}

struct Resolved {
  int64_t model_id = 0;
  int64_t version_id = 0;
  int64_t version = 0;
  Status status = Status::pending;
};

constexpr const char* kVersionColumns =
    "m.name, v.version, v.status, v.description, v.format, v.source, v.tensors, v.bytes, v.bytes_written, v.digest, "
    "v.created_at, v.ready_at, v.deleted_at, v.registered_by, v.ckpt_version, v.producer, v.signer, v.step, v.seed, "
    "v.run_config, v.run_start, v.run_end, v.run_host, v.parent_digest, v.parent, v.id";

VersionInfo version_from_row(const Row& r) {
  VersionInfo v;
  v.name = r.str(0);
  v.version = r.i64(1);
  v.status = parse_status(r.str(2));
  v.description = r.str_or(3, "");
  v.format = r.str_or(4, "");
  v.source = r.str_or(5, "");
  v.tensors = static_cast<uint64_t>(r.i64(6));
  v.bytes = static_cast<uint64_t>(r.i64(7));
  v.bytes_written = static_cast<uint64_t>(r.i64(8));
  v.digest = r.str_or(9, "");
  v.created_at = r.str_or(10, "");
  v.ready_at = r.str_or(11, "");
  v.deleted_at = r.str_or(12, "");
  v.registered_by = r.str_or(13, "");
  v.ckpt_version = r.str_or(14, "");
  v.producer = r.str_or(15, "");
  v.signer = r.str_or(16, "");
  v.step = r.opt_i64(17);
  v.seed = r.opt_i64(18);
  v.run_config = r.str_or(19, "");
  v.run_start = r.str_or(20, "");
  v.run_end = r.str_or(21, "");
  v.run_host = r.str_or(22, "");
  v.parent_digest = r.str_or(23, "");
  v.parent = r.str_or(24, "");
  return v;
}

// A signature file's statement, as signature.cpp writes it; only the fields the signed message
// covers are taken.
struct StoredSignature {
  SignedStatement statement;
  std::array<unsigned char, crypto_sign_BYTES> signature{};
};

StoredSignature parse_stored_signature(const std::string& text, const std::string& where) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IntegrityError(where + ": the stored signature is not JSON");
  StoredSignature s;
  try {
    s.statement.key_id = j.at("key_id").get<std::string>();
    s.statement.format = j.at("checkpoint_format").get<std::string>();
    s.statement.file_size = j.at("file_size").get<uint64_t>();
    s.statement.file_digest = j.at("file_blake2b").get<std::string>();
    s.statement.manifest_digest = j.at("manifest_blake2b").get<std::string>();
    s.statement.tensors = j.at("tensors").get<uint64_t>();
    s.statement.tensor_bytes = j.at("tensor_bytes").get<uint64_t>();
    const std::string b64 = j.at("signature").get<std::string>();
    size_t len = 0;
    if (sodium_base642bin(s.signature.data(), s.signature.size(), b64.data(), b64.size(), nullptr, &len, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != s.signature.size())
      throw IntegrityError(where + ": the stored signature's bytes are not base64 of an Ed25519 signature");
  } catch (const nlohmann::json::exception& e) {
    throw IntegrityError(where + ": the stored signature lacks a field: " + e.what());
  }
  return s;
}

// An unnamed file (O_TMPFILE) in `folder`, `size` bytes, mapped: memory backed by the file
// system rather than by this process, for bytes that must stay addressable for a while.
class SpillFile {
 public:
  SpillFile(const fs::path& folder, uint64_t size) : size_(static_cast<size_t>(size)) {
    int fd = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
      // A file system without O_TMPFILE: a named file, unlinked at once.
      std::string templ = (folder / ".ckpt-pull-XXXXXX").string();
      fd = ::mkostemp(templ.data(), O_CLOEXEC);
      if (fd >= 0) ::unlink(templ.c_str());
    }
    if (fd < 0) throw IoError("cannot create a temporary file in " + folder.string() + ": " + std::strerror(errno));
    if (::ftruncate(fd, static_cast<off_t>(size_)) != 0) {
      const int err = errno;
      ::close(fd);
      throw IoError("cannot size a temporary file in " + folder.string() + ": " + std::strerror(err));
    }
    void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int err = errno;
    ::close(fd);
    if (m == MAP_FAILED) throw IoError("cannot map a temporary file in " + folder.string() + ": " + std::strerror(err));
    data_ = static_cast<std::byte*>(m);
  }
  ~SpillFile() { ::munmap(data_, size_); }
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;
  std::byte* data() const { return data_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

class Impl final : public ModelRegistry {
 public:
  Impl(Uri uri, Open mode, int64_t target_schema, bool adopt_store = false) : adopt_store_(adopt_store), uri_(std::move(uri)) {
    const OpenMode om = mode == Open::create ? OpenMode::create : OpenMode::existing;
    if (uri_.kind == Uri::Kind::sqlite) {
      if (mode == Open::create && !uri_.sqlite_path.parent_path().empty()) {
        std::error_code ec;
        fs::create_directories(uri_.sqlite_path.parent_path(), ec);
        if (ec) throw IoError("cannot create " + uri_.sqlite_path.parent_path().string() + ": " + ec.message());
      }
      db_ = open_sqlite(uri_.sqlite_path, mode == Open::create ? SqliteAccess::create
                                          : mode == Open::read && !may_write(uri_.sqlite_path) ? SqliteAccess::read_only
                                                                                             : SqliteAccess::existing);
    } else {
      db_ = open_postgresql(uri_.conninfo, redact_uri(uri_.conninfo));
      // Checked before the schema is made: a URI that cannot work changes nothing.
      if (!uri_.store && !recorded_store()) throw UsageError(store_missing(mode));
    }
    prepare_schema(*db_, om, target_schema);
    if (db_->backend() == Backend::sqlite && !db_->read_only()) db_->exec_script("PRAGMA journal_mode=WAL");
    store_path_ = choose_store(mode);
    store_ = std::make_unique<BlobStore>(store_path_);
    check_store_id();
    if (record_store_) {
      Transaction t(*db_);
      db_->exec("INSERT INTO settings (key, value) VALUES ('store', ?) ON CONFLICT (key) DO NOTHING",
                {fs::absolute(store_path_).string()});
      t.commit();
    }
  }

  int64_t schema_version() override { return db_->query("SELECT version FROM schema_version").at(0).i64(0); }
  const fs::path& store() const override { return store_path_; }
  std::string describe() const override { return db_->where() + " (store " + store_path_.string() + ")"; }

  void require_signed(const PublicKey& key) override {
    char hex[2 * PublicKey::kSize + 1];
    sodium_bin2hex(hex, sizeof hex, key.bytes().data(), key.bytes().size());
    Transaction t(*db_);
    // A registry's key is never replaced in passing: whoever could run init with their own key
    // would have their versions accepted where another key's signature was required.
    if (auto current = required_key(); current && current->id() != key.id())
      throw UsageError(db_->where() + " already requires versions signed by key " + current->id() +
                       "; it is not replaced by key " + key.id() + " (nothing was changed)");
    put_setting("require_signed", hex);
    t.commit();
  }

  // The registry's key and the caller's, both of which must have signed.
  std::vector<PublicKey> keys_required(const std::optional<PublicKey>& extra) {
    std::vector<PublicKey> keys;
    if (auto k = required_key()) keys.push_back(*k);
    if (extra && (keys.empty() || keys[0].id() != extra->id())) keys.push_back(*extra);
    return keys;
  }

  std::optional<PublicKey> required_key() override {
    auto v = setting("require_signed");
    if (!v) return std::nullopt;
    std::array<unsigned char, PublicKey::kSize> bytes{};
    size_t len = 0;
    if (sodium_hex2bin(bytes.data(), bytes.size(), v->data(), v->size(), nullptr, &len, nullptr) != 0 || len != bytes.size())
      throw FormatError(db_->where() + ": the setting require_signed is not a public key");
    return PublicKey(bytes);
  }

  VersionInfo register_checkpoint(const fs::path& file, const RegisterOptions& o) override {
    check_model_name(o.name);
    for (const auto& a : o.aliases) check_alias(a);
    for (const auto& [k, v] : o.tags)
      if (k.empty()) throw UsageError("a tag needs a key (KEY=VALUE)");
    std::error_code ec;
    if (!fs::exists(file, ec)) throw UsageError("cannot register " + file.string() + ": no such file or folder");
    LoadOptions lo;
    lo.format = o.format;
    auto reader = ckpt::open(file, lo);
    const Document& tree = reader->tree();

    // Everything that can refuse the input is checked before the registry changes.
    // --require-signed adds a key; the registry's own always applies.
    const std::vector<PublicKey> keys = keys_required(o.require_signed);
    std::string signature_text, signer;
    for (const auto& k : keys) {
      if (fs::is_directory(file, ec))
        throw UsageError("cannot register the folder " + file.string() +
                         ": this registry requires signed versions and a signature covers one file");
      SignatureReport rep = verify_signature(file, *reader, k, o.signature);
      if (!rep.ok()) {
        std::string msg = "refusing " + file.string() + ": a valid signature by key " + k.id() + " is required:";
        for (const auto& p : rep.problems) msg += " " + p;
        throw IntegrityError(msg);
      }
      if (signature_text.empty()) {
        signature_text = read_text_file(rep.signature, kMaxSignatureBytes, "signature");
        signer = k.id();
      }
    }
    // A file that records its own hashes (XXH3, meta/integrity) is checked against them: one
    // more pass over bytes the page cache holds, at memory speed.
    VerifyReport check;
    if (tree.find_group_path("meta/integrity")) check = ckpt::verify(*reader);
    if (check.has_integrity && !check.ok()) {
      std::string msg = "refusing " + file.string() + ": it does not match its own recorded hashes:";
      for (const auto& p : check.problems) msg += "\n  " + p;
      throw IntegrityError(msg);
    }
    std::string parent, parent_digest;
    if (!o.parent.empty()) resolve_parent(o.parent, parent, parent_digest);
    std::string run_config = str_attr(tree, "trainer", "config");
    if (!o.run_config_file.empty()) run_config = read_text_file(o.run_config_file, kMaxConfigBytes, "config");
    std::vector<std::pair<std::string, double>> metrics;
    collect_metrics(tree, metrics);
    for (const auto& m : o.metrics) metrics.push_back(m);
    {
      // Later values of a key win (a --metric overrides the file's).
      std::map<std::string, double> seen;
      for (const auto& [k, v] : metrics) seen[k] = v;
      metrics.assign(seen.begin(), seen.end());
    }
    std::map<std::string, std::string> tags;
    for (const auto& [k, v] : o.tags) tags[k] = v;

    StoreLock lock(store_path_, StoreLock::Mode::shared, 600);
    const std::string by = who();
    int64_t version_id = 0, version = 0;
    {
      Transaction t(*db_);
      const std::string now = now_iso();
      db_->exec("INSERT INTO models (name, description, created_at) VALUES (?, '', ?) ON CONFLICT (name) DO NOTHING",
                {o.name, now});
      // The row update serialises registrations of one name: each sees the previous one's
      // number (PostgreSQL holds the row lock to commit; SQLite's transaction is exclusive).
      auto rows = db_->query("UPDATE models SET last_version = last_version + 1 WHERE name = ? RETURNING id, last_version",
                             {o.name});
      const int64_t model_id = rows.at(0).i64(0);
      version = rows.at(0).i64(1);
      rows = db_->query(
          "INSERT INTO versions (model_id, version, status, description, format, source, created_at, registered_by, "
          "ckpt_version, producer, signature, signer, step, seed, run_config, run_start, run_end, run_host, "
          "parent_digest, parent) VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
          {model_id, version, o.description, reader->format().name, fs::absolute(file).string(), now, by,
           std::string(kCkptVersion), str_attr(tree, "meta", "producer"), opt(signature_text), opt(signer),
           opt(int_attr(tree, "trainer", "step")), opt(int_attr(tree, "trainer", "seed")), opt(run_config),
           opt(o.run_start.value_or("")), opt(o.run_end.value_or("")), host_name(), opt(parent_digest), opt(parent)});
      version_id = rows.at(0).i64(0);
      t.commit();
    }
    try {
      std::unordered_map<std::string, std::string> digests;
      std::vector<ManifestTensor> entries;
      const uint64_t total = tree.tensor_bytes();
      Stored stored = store_tensors(*reader, tree, o, total, previous_tensors(o.name, version, parent_digest));
      const uint64_t written = stored.written;
      for (auto& j : stored.jobs) {
        entries.push_back({j->path, j->digest, j->data.nbytes(), nullptr});
        digests.emplace(j->path, j->digest);
      }
      stored.jobs.clear();  // the file's mappings
      if (o.fsync) store_->sync();
      // Verified: every blob the version names is in the store with its size (the bytes were
      // hashed as they were written; reads re-hash them).
      for (const auto& e : entries)
        if (!store_->has(e.digest, e.nbytes))
          throw IntegrityError("registering " + file.string() + ": the blob of tensor " + e.path + " is not in the store");
      const std::string manifest = encode_manifest(tree, digests);
      const std::string digest = digest_of(manifest);
      Transaction t(*db_);
      for (size_t i = 0; i < entries.size();) {
        // Many rows per statement: a checkpoint of 100,000 tensors is 100,000 round trips to a
        // server otherwise.
        const size_t n = std::min<size_t>(entries.size() - i, 200);
        std::string sql = "INSERT INTO version_tensors (version_id, path, digest, nbytes) VALUES ";
        std::vector<Param> ps;
        for (size_t k = 0; k < n; ++k) {
          sql += k ? ",(?,?,?,?)" : "(?,?,?,?)";
          const auto& e = entries[i + k];
          ps.insert(ps.end(), {version_id, e.path, e.digest, static_cast<int64_t>(e.nbytes)});
        }
        db_->exec(sql, ps);
        i += n;
      }
      for (const auto& [k, v] : metrics)
        db_->exec("INSERT INTO metrics (version_id, key, value) VALUES (?, ?, ?)", {version_id, k, v});
      for (const auto& [k, v] : tags) db_->exec("INSERT INTO tags (version_id, key, value) VALUES (?, ?, ?)", {version_id, k, v});
      db_->exec(
          "UPDATE versions SET status = 'READY', manifest = ?, digest = ?, tensors = ?, bytes = ?, bytes_written = ?, "
          "ready_at = ? WHERE id = ?",
          {manifest, digest, static_cast<int64_t>(entries.size()), static_cast<int64_t>(total), static_cast<int64_t>(written),
           now_iso(), version_id});
      const int64_t model_id = model_id_of(o.name);
      for (const auto& a : o.aliases) move_alias(model_id, a, version_id, version, by, "registered");
      t.commit();
    } catch (...) {
      // Leave nothing half-made when we can; gc removes what a crash leaves.
      try {
        Transaction t(*db_);
        drop_versions({version_id});
        t.commit();
      } catch (...) {
      }
      throw;
    }
    VersionInfo info = show(Ref{o.name, version, std::nullopt});
    info.bytes_hashed = hashed_;
    return info;
  }

  std::vector<ModelInfo> list_models() override {
    std::vector<ModelInfo> out;
    std::map<int64_t, size_t> at;
    for (const auto& r : db_->query(
             "SELECT m.id, m.name, m.created_at, (SELECT COUNT(*) FROM versions v WHERE v.model_id = m.id AND "
             "v.status = 'READY'), (SELECT MAX(v.version) FROM versions v WHERE v.model_id = m.id AND v.status = "
             "'READY') FROM models m ORDER BY m.name")) {
      ModelInfo mi;
      mi.name = r.str(1);
      mi.created_at = r.str(2);
      mi.versions = r.i64(3);
      mi.latest = r.opt_i64(4).value_or(0);
      at[r.i64(0)] = out.size();
      out.push_back(std::move(mi));
    }
    for (const auto& r : db_->query("SELECT a.model_id, a.alias, v.version FROM aliases a JOIN versions v ON v.id = "
                                    "a.version_id ORDER BY a.alias"))
      out[at.at(r.i64(0))].aliases.emplace_back(r.str(1), r.i64(2));
    return out;
  }

  std::vector<VersionInfo> list_versions(const std::string& name, bool include_deleted) override {
    check_model_name(name);
    const int64_t model_id = model_id_of(name);
    std::vector<VersionInfo> out;
    std::map<int64_t, size_t> at;
    for (const auto& r : db_->query(std::string("SELECT ") + kVersionColumns +
                                        " FROM versions v JOIN models m ON m.id = v.model_id WHERE v.model_id = ?" +
                                        (include_deleted ? "" : " AND v.status <> 'DELETED'") + " ORDER BY v.version",
                                    {model_id})) {
      at[r.i64(25)] = out.size();
      out.push_back(version_from_row(r));
    }
    for (const auto& r : db_->query("SELECT version_id, alias FROM aliases WHERE model_id = ? ORDER BY alias", {model_id}))
      if (auto it = at.find(r.i64(0)); it != at.end()) out[it->second].aliases.push_back(r.str(1));
    return out;
  }

  VersionInfo show(const Ref& ref) override {
    const Resolved r = resolve(ref);
    auto rows = db_->query(std::string("SELECT ") + kVersionColumns + " FROM versions v JOIN models m ON m.id = v.model_id WHERE v.id = ?",
                           {r.version_id});
    VersionInfo v = version_from_row(rows.at(0));
    for (const auto& m : db_->query("SELECT key, value FROM metrics WHERE version_id = ? ORDER BY key", {r.version_id}))
      v.metrics.emplace_back(m.str(0), m.f64(1));
    for (const auto& t : db_->query("SELECT key, value FROM tags WHERE version_id = ? ORDER BY key", {r.version_id}))
      v.tags.emplace_back(t.str(0), t.str(1));
    for (const auto& a : db_->query("SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias", {r.version_id}))
      v.aliases.push_back(a.str(0));
    return v;
  }

  std::vector<TensorEntry> tensors(const Ref& ref) override {
    const Resolved r = resolve(ref);
    auto rows = db_->query("SELECT manifest FROM versions WHERE id = ?", {r.version_id});
    if (rows.at(0).null(0))
      throw UsageError(ref.name + "/" + std::to_string(r.version) + " is " + status_text(r.status) + " and has no manifest");
    std::vector<ManifestTensor> listed;
    const Document tree = decode_manifest(rows[0].str(0), listed, db_->where() + ": " + ref.text());
    std::vector<TensorEntry> out;
    out.reserve(listed.size());
    for (const auto& t : listed)
      out.push_back({t.path, std::string(name(t.listed->dtype())), t.listed->shape(), t.nbytes, t.digest});
    return out;
  }

  void set_alias(const std::string& name, const std::string& alias, int64_t version) override {
    check_alias(alias);
    Transaction t(*db_);
    const Resolved r = resolve(Ref{name, version, std::nullopt});
    if (r.status != Status::ready)
      throw UsageError("cannot point alias '" + alias + "' at " + name + "/" + std::to_string(version) + ": it is " +
                       status_text(r.status));
    move_alias(r.model_id, alias, r.version_id, r.version, who(), "set");
    t.commit();
  }

  void remove_alias(const std::string& name, const std::string& alias) override {
    check_alias(alias);
    Transaction t(*db_);
    const Resolved r = resolve(Ref{name, std::nullopt, alias});
    db_->exec("DELETE FROM aliases WHERE model_id = ? AND alias = ?", {r.model_id, alias});
    db_->exec("INSERT INTO alias_history (model_id, alias, version, previous, at, by_whom, reason) VALUES (?, ?, NULL, ?, ?, ?, 'removed')",
              {r.model_id, alias, r.version, now_iso(), who()});
    t.commit();
  }

  void set_tag(const Ref& ref, const std::string& key, const std::string& value) override {
    if (key.empty()) throw UsageError("a tag needs a key (KEY=VALUE)");
    Transaction t(*db_);
    const Resolved r = resolve(ref);
    db_->exec("INSERT INTO tags (version_id, key, value) VALUES (?, ?, ?) ON CONFLICT (version_id, key) DO UPDATE SET "
              "value = excluded.value",
              {r.version_id, key, value});
    t.commit();
  }

  void remove_tag(const Ref& ref, const std::string& key) override {
    Transaction t(*db_);
    const Resolved r = resolve(ref);
    if (db_->query("DELETE FROM tags WHERE version_id = ? AND key = ? RETURNING key", {r.version_id, key}).empty())
      throw UsageError(ref.text() + " has no tag '" + key + "'");
    t.commit();
  }

  std::vector<AliasMove> history(const std::string& name, const std::string& alias) override {
    check_model_name(name);
    check_alias(alias);
    const int64_t model_id = model_id_of(name);
    std::vector<AliasMove> out;
    for (const auto& r : db_->query("SELECT version, previous, at, by_whom, reason FROM alias_history WHERE model_id = ? "
                                    "AND alias = ? ORDER BY id",
                                    {model_id, alias}))
      out.push_back({alias, r.opt_i64(0), r.opt_i64(1), r.str(2), r.str(3), r.str(4)});
    if (out.empty()) throw UsageError("model '" + name + "' has never had an alias '" + alias + "'");
    return out;
  }

  std::vector<VersionInfo> search(const SearchQuery& q) override {
    std::string sql = "SELECT m.name, v.version FROM versions v JOIN models m ON m.id = v.model_id";
    std::vector<Param> ps;
    if (!q.metric.empty()) {
      sql += " JOIN metrics mt ON mt.version_id = v.id AND mt.key = ?";
      ps.push_back(q.metric);
    }
    for (size_t i = 0; i < q.tags.size(); ++i) {
      const std::string t = "t" + std::to_string(i);
      sql += " JOIN tags " + t + " ON " + t + ".version_id = v.id AND " + t + ".key = ? AND " + t + ".value = ?";
      ps.push_back(q.tags[i].first);
      ps.push_back(q.tags[i].second);
    }
    sql += " WHERE v.status = 'READY'";
    if (!q.name.empty()) {
      check_model_name(q.name);
      model_id_of(q.name);
      sql += " AND m.name = ?";
      ps.push_back(q.name);
    }
    sql += q.metric.empty() ? " ORDER BY m.name, v.version DESC"
                            : std::string(" ORDER BY mt.value ") + (q.maximize ? "DESC" : "ASC") + ", m.name, v.version DESC";
    sql += " LIMIT ?";
    ps.push_back(static_cast<int64_t>(std::min<size_t>(q.limit, 1'000'000)));
    std::vector<VersionInfo> out;
    for (const auto& r : db_->query(sql, ps)) out.push_back(show(Ref{r.str(0), r.i64(1), std::nullopt}));
    return out;
  }

  void delete_version(const std::string& name, int64_t version) override {
    Transaction t(*db_);
    const Resolved r = resolve(Ref{name, version, std::nullopt});
    if (r.status == Status::deleted) throw UsageError(name + "/" + std::to_string(version) + " is already deleted");
    if (r.status == Status::pending)
      throw UsageError(name + "/" + std::to_string(version) +
                       " is PENDING (being registered, or left by a registrant that died: `ckpt registry gc` removes it)");
    const std::string by = who(), now = now_iso();
    for (const auto& a : db_->query("DELETE FROM aliases WHERE version_id = ? RETURNING alias", {r.version_id}))
      db_->exec("INSERT INTO alias_history (model_id, alias, version, previous, at, by_whom, reason) VALUES (?, ?, NULL, ?, ?, ?, ?)",
                {r.model_id, a.str(0), r.version, now, by, "version " + std::to_string(r.version) + " deleted"});
    db_->exec("UPDATE versions SET status = 'DELETED', deleted_at = ? WHERE id = ?", {now, r.version_id});
    t.commit();
  }

  GcReport gc(const GcOptions& o) override {
    GcReport rep;
    // With the store locked exclusively no registrant is alive: a PENDING version is a dead one's.
    StoreLock lock(store_path_, StoreLock::Mode::exclusive, o.wait_seconds);
    // Listed before the references are read: a blob is removed only if nothing referenced it
    // after it was listed (registrants are kept out by the lock anyway).
    const auto blobs = store_->list();
    std::vector<int64_t> dead;
    {
      Transaction t(*db_);
      for (const auto& r : db_->query("SELECT v.id, m.name, v.version, v.status FROM versions v JOIN models m ON m.id = "
                                      "v.model_id WHERE v.status IN ('PENDING', 'DELETED') ORDER BY m.name, v.version")) {
        dead.push_back(r.i64(0));
        rep.versions.push_back(r.str(1) + "/" + r.str(2) + " (" + r.str(3) + ")");
        (r.str(3) == "PENDING" ? rep.pending_removed : rep.deleted_removed)++;
      }
      if (!o.dry_run) {
        drop_versions(dead);
        t.commit();
      }
    }
    std::set<std::string> referenced;
    {
      std::string sql = "SELECT DISTINCT digest FROM version_tensors";
      std::set<int64_t> excluded(dead.begin(), dead.end());
      for (const auto& r : db_->query(o.dry_run ? "SELECT DISTINCT digest, version_id FROM version_tensors" : sql)) {
        if (o.dry_run && excluded.count(r.i64(1))) continue;
        referenced.insert(r.str(0));
      }
    }
    for (const auto& b : blobs) {
      if (referenced.count(b.digest)) continue;
      rep.blobs_removed++;
      rep.bytes_removed += b.bytes;
      if (!o.dry_run) store_->remove_blob(b);
    }
    for (const auto& tmp : store_->temporaries()) {
      rep.temporaries_removed++;
      // Unlinked, never removed recursively: a link in tmp/ goes, never what it points at.
      if (!o.dry_run) store_->remove_temporary(tmp);
    }
    return rep;
  }

  PullReport pull(const Ref& ref, const fs::path& out, const PullOptions& o) override {
    const Resolved r = resolve(ref);
    const std::string label = ref.name + "/" + std::to_string(r.version);
    if (r.status != Status::ready)
      throw UsageError("cannot pull " + label + ": it is " + status_text(r.status) +
                       (r.status == Status::pending ? " (not yet stored and verified)" : ""));
    auto rows = db_->query("SELECT manifest, format, signature, signer FROM versions WHERE id = ?", {r.version_id});
    const Row& row = rows.at(0);
    std::vector<ManifestTensor> tensors;
    Document tree = decode_manifest(row.str(0), tensors, db_->where() + ": " + label);
    const std::string registered_format = row.str(1);
    PullReport rep;
    rep.version = show(Ref{ref.name, r.version, std::nullopt});

    for (const auto& key : keys_required(o.require_signed)) {
      if (row.null(2))
        throw IntegrityError("refusing to pull " + label + ": it is not signed and a signature by key " + key.id() +
                             " is required");
      check_stored_signature(row.str(2), tree, tensors, key, label);
      rep.signature_checked = true;
    }

    const Registry& plugins = Registry::global();
    std::string target = o.to;
    if (target == "auto") {
      try {
        target = plugins.for_writing(out, "auto").name();
      } catch (const UsageError&) {
        target = registered_format;
      }
    }
    const Format target_format = plugins.get(target);
    rep.format = target_format.name();
    for (const auto& t : tensors) {
      rep.tensors++;
      rep.bytes += t.nbytes;
    }
    std::unordered_map<std::string, size_t> by_path;
    for (size_t i = 0; i < tensors.size(); ++i) by_path.emplace(tensors[i].path, i);
    // Every blob is checked against its BLAKE2b-256, the digest the manifest (and a signature)
    // names; nothing weaker is ever the check.
    rep.blake2b_checked = true;
    // Blobs are re-hashed by the pool a few tensors ahead of the writer, which waits for each
    // before it sees a byte: a damaged blob stops the pull and the target is never renamed
    // into place. Every blob stays held until the writer is done (writers may look back at
    // earlier tensors to find equal ones).
    std::vector<std::unique_ptr<Blob>> held(tensors.size());
    // Small blobs are read, not mapped, and all of them are held: their total grows with the
    // version's tensor count, so beyond memory_limit they go to a file the kernel may write out.
    std::vector<std::byte*> slot(tensors.size(), nullptr);
    std::unique_ptr<SpillFile> spill;
    {
      uint64_t small = 0;
      for (const auto& t : tensors)
        if (t.nbytes < Blob::kMapThreshold) small += t.nbytes;
      if (small > o.memory_limit) {
        spill = std::make_unique<SpillFile>(fs::absolute(out).parent_path(), small);
        uint64_t at = 0;
        for (size_t i = 0; i < tensors.size(); ++i)
          if (tensors[i].nbytes > 0 && tensors[i].nbytes < Blob::kMapThreshold) {
            slot[i] = spill->data() + at;
            at += tensors[i].nbytes;
          }
        rep.spilled_bytes = small;
      }
    }
    std::vector<std::future<void>> checked(tensors.size());
    size_t launched = 0;
    uint64_t done = 0;
    const unsigned threads = WorkPool::default_threads();
    auto source = [&, this](const std::string& path, const Tensor&) -> std::span<const std::byte> {
      auto it = by_path.find(path);
      if (it == by_path.end()) throw Error("pull " + label + ": the writer asked for tensor " + path + ", not in the manifest");
      const size_t i = it->second;
      while (launched < tensors.size() && launched <= i + 2 * threads) {
        const size_t k = launched++;
        checked[k] = pool_for_pull_->submit([this, k, &held, &slot, &tensors, &label] {
          const std::string what = "tensor '" + tensors[k].path + "' of " + label;
          held[k] = store_->get(tensors[k].digest, tensors[k].nbytes, what, slot[k]);
        });
      }
      checked[i].get();
      done += tensors[i].nbytes;
      if (o.progress) o.progress(done, rep.bytes);
      return held[i]->bytes();
    };
    // Waits for the checks still running before `held` goes, whatever happens.
    struct Drain {
      std::vector<std::future<void>>& f;
      ~Drain() {
        for (auto& x : f)
          if (x.valid()) x.wait();
      }
    } drain{checked};
    pool_for_pull_ = std::make_unique<WorkPool>(threads);
    struct PoolReset {
      std::unique_ptr<WorkPool>& p;
      ~PoolReset() { p.reset(); }
    } pool_reset{pool_for_pull_};
    const std::vector<Loss> losses =
        target_format.name() == registered_format ? std::vector<Loss>{} : plan_losses(tree, target_format.info());
    if (!losses.empty() && !o.allow_lossy) {
      // Refused before a byte is written, as convert refuses.
      std::string msg = "pulling " + label + " into " + target_format.name() + " would lose:";
      for (size_t i = 0; i < losses.size() && i < 20; ++i) msg += "\n  " + losses[i].path + ": " + losses[i].what;
      if (losses.size() > 20) msg += "\n  ... (" + std::to_string(losses.size()) + " in all)";
      throw UnsupportedError(msg + "\n(--allow-lossy to convert anyway)");
    }
    if (losses.empty()) {
      write_through(tree, source, out, target_format, o.fsync);
      return rep;
    }
    // Another format that cannot hold everything as it is: materialise the registered format
    // beside the output, then the normal convert path (casts, the --allow-lossy rule, atomic).
    const Format original = plugins.get(registered_format);
    std::string ext = original.info().extensions.empty() ? "" : original.info().extensions.front();
    if (!ext.empty() && ext[0] != '.') ext = "." + ext;
    // In a folder of its own, whose name no sweep of temporaries takes for a dead save's.
    std::string templ = (fs::absolute(out).parent_path() / ("." + fs::path(out).filename().string() + ".registry-XXXXXX")).string();
    if (!::mkdtemp(templ.data())) throw IoError("cannot create a folder beside " + out.string() + ": " + std::strerror(errno));
    struct RemoveAll {
      fs::path p;
      ~RemoveAll() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } staging{templ};
    const fs::path staged = staging.p / ("staged" + ext);
    write_through(tree, source, staged, original, false, /*plain=*/true);
    held.clear();
    ConvertOptions co;
    co.from = registered_format;
    co.to = target_format.name();
    co.allow_lossy = o.allow_lossy;
    co.fsync = o.fsync;
    ConvertReport cr = convert(staged, out, co);
    for (const auto& l : cr.losses) rep.losses.push_back(l.path + ": " + l.what);
    return rep;
  }

  VerifyVersionReport verify(const Ref& ref) override {
    const Resolved r = resolve(ref);
    const std::string label = ref.name + "/" + std::to_string(r.version);
    if (r.status != Status::ready) throw UsageError("cannot verify " + label + ": it is " + status_text(r.status));
    VerifyVersionReport rep;
    std::vector<std::pair<std::string, uint64_t>> damaged;
    for (const auto& t : db_->query("SELECT path, digest, nbytes FROM version_tensors WHERE version_id = ? ORDER BY path",
                                    {r.version_id})) {
      rep.tensors++;
      rep.bytes += static_cast<uint64_t>(t.i64(2));
      try {
        store_->get(t.str(1), static_cast<uint64_t>(t.i64(2)), "tensor '" + t.str(0) + "' of " + label);
      } catch (const Error& e) {
        rep.problems.push_back(e.what());
        damaged.emplace_back(t.str(1), static_cast<uint64_t>(t.i64(2)));
      }
    }
    if (damaged.empty()) return rep;
    // Registrations reuse a blob of the right size without re-hashing it, so a damaged one would
    // stay in every later version of those bytes: it is moved aside (never while a registration
    // runs: under the exclusive lock, which a registrant would have to wait for).
    try {
      StoreLock lock(store_path_, StoreLock::Mode::exclusive, 5);
      for (const auto& [digest, size] : damaged)
        if (store_->set_aside_if_damaged(digest, size)) rep.blobs_set_aside++;
    } catch (const IoError& e) {
      rep.problems.push_back(std::string("the damaged blobs were left in place: ") + e.what());
    }
    return rep;
  }

 private:
  static Param opt(const std::string& s) { return s.empty() ? Param{} : Param{s}; }
  static Param opt(const std::optional<int64_t>& v) { return v ? Param{*v} : Param{}; }

  std::optional<std::string> setting(const std::string& key) {
    auto rows = db_->query("SELECT value FROM settings WHERE key = ?", {key});
    if (rows.empty()) return std::nullopt;
    return rows[0].str(0);
  }
  void put_setting(const std::string& key, const std::string& value) {
    db_->exec("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
              {key, value});
  }

  fs::path choose_store(Open mode) {
    if (uri_.kind == Uri::Kind::sqlite) {
      // Beside the database unless named: registry.db -> registry.store/.
      if (uri_.store) return *uri_.store;
      fs::path p = uri_.sqlite_path;
      p.replace_extension(".store");
      if (p == uri_.sqlite_path) p += ".store";
      return p;
    }
    auto recorded = setting("store");
    if (uri_.store) {
      // Recorded once the store's id is known to be this database's (check_store_id).
      record_store_ = !recorded;
      return *uri_.store;
    }
    if (recorded) return *recorded;
    throw UsageError(store_missing(mode));
  }

  // A store and its database name each other by a random id (store/.store-id and the setting
  // store_id): a registry opened on another registry's store would otherwise see that
  // registry's blobs as unreferenced, and its gc would delete them.
  void check_store_id() {
    const fs::path file = store_path_ / ".store-id";
    // The first open writes the file, then the setting: another process may find the two
    // apart for that long.
    for (int attempt = 0;; ++attempt) {
      const auto recorded = setting("store_id");
      const auto held = read_store_id(file);
      if (recorded && held && *recorded == *held) return;
      if (!recorded && !held) break;
      if (attempt < 40 && (!recorded || !held)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      throw UsageError(
          !held ? "the store " + store_path_.string() + " is not the store of " + db_->where() +
                      ": the database records store id " + *recorded + ", the folder holds none (.store-id); name the "
                      "registry's own store folder"
          : !recorded ? "the store " + store_path_.string() + " belongs to another registry (store id " + *held + "), and " +
                            db_->where() + " records none; a registry needs a store of its own"
                      : "the store " + store_path_.string() + " belongs to another registry (store id " + *held + ", " +
                            db_->where() + " records " + *recorded + "); name this registry's own store folder");
    }
    // Neither. A new store takes a new id. A store that holds blobs but no id was made before
    // stores had ids, by this registry or by another: adopted only when asked (`init
    // --adopt-store`), since a registry that adopted another's store would see that registry's
    // blobs as unreferenced and its gc would delete them.
    if (!store_->empty() && !adopt_store_)
      throw UsageError("the store " + store_path_.string() + " holds blobs but no store id (.store-id), and " + db_->where() +
                       " records none: it was made before stores had ids, by this registry or by another. If it is this "
                       "registry's own store, run `ckpt registry init --adopt-store` with this registry once; otherwise "
                       "name this registry's own store folder. Nothing was changed.");
    if (db_->read_only())
      throw UsageError("the store " + store_path_.string() + " has no store id yet and " + db_->where() +
                       " cannot be written by this user to record one; open it once as a user who may write it");
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    char hex[2 * sizeof raw + 1];
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    // Through the store's folder descriptors: tmp/ swapped for a link is not followed. When
    // another process wrote an id first, theirs stands.
    store_->publish_once(".store-id", std::string(hex) + "\n");
    const auto held = read_store_id(file);
    if (!held) throw IoError("cannot read back " + file.string());
    {
      Transaction t(*db_);
      db_->exec("INSERT INTO settings (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING", {*held});
      t.commit();
    }
    if (setting("store_id") != held)
      throw UsageError("the store " + store_path_.string() + " belongs to another registry (store id " + *held + ", " +
                       db_->where() + " records " + setting("store_id").value_or("") + ")");
  }

  // Whether this user may write an SQLite database and the folder its -wal and -shm go in: only
  // picks how a reading command opens it (the kernel decides what is allowed).
  static bool may_write(const fs::path& db) {
    const fs::path folder = fs::absolute(db).parent_path();
    return ::access(db.c_str(), W_OK) == 0 && ::access(folder.c_str(), W_OK | X_OK) == 0;
  }

  static std::optional<std::string> read_store_id(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) return std::nullopt;
      throw IoError("cannot read the store id " + file.string() + ": " + std::strerror(errno));
    }
    char buf[128];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::string id(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
    if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw FormatError(file.string() + " is not a store id (32 hex digits)");
    return id;
  }

  std::string store_missing(Open mode) const {
    return db_->where() + ": a PostgreSQL registry keeps its tensors in a folder: name it once with ?store=/folder in the URI" +
           std::string(mode == Open::create ? "" : " (none is recorded in the database)");
  }

  // The store folder a registry in this database recorded, read without assuming it is one.
  bool recorded_store() {
    if (!db_->table_exists("settings") || !db_->table_exists("schema_version")) return false;
    try {
      return !db_->query("SELECT value FROM settings WHERE key = 'store'").empty();
    } catch (const Error&) {
      return false;
    }
  }

  int64_t model_id_of(const std::string& name) {
    auto rows = db_->query("SELECT id FROM models WHERE name = ?", {name});
    if (rows.empty()) {
      std::string known;
      auto all = db_->query("SELECT name FROM models ORDER BY name LIMIT 11");
      for (size_t i = 0; i < all.size() && i < 10; ++i) known += (i ? ", " : "") + all[i].str(0);
      throw UsageError("no model named '" + name + "' in " + db_->where() +
                       (known.empty() ? " (it holds none)" : " (models: " + known + (all.size() > 10 ? ", ..." : "") + ")"));
    }
    return rows[0].i64(0);
  }

  Resolved resolve(const Ref& ref) {
    check_model_name(ref.name);
    Resolved r;
    r.model_id = model_id_of(ref.name);
    std::vector<Row> rows;
    if (ref.version) {
      rows = db_->query("SELECT id, version, status FROM versions WHERE model_id = ? AND version = ?", {r.model_id, *ref.version});
      if (rows.empty()) {
        auto range = db_->query("SELECT MIN(version), MAX(version) FROM versions WHERE model_id = ?", {r.model_id});
        throw UsageError("model '" + ref.name + "' has no version " + std::to_string(*ref.version) +
                         (range.at(0).null(0) ? " (it has none)"
                                              : " (its versions run from " + range[0].str(0) + " to " + range[0].str(1) + ")"));
      }
    } else if (ref.alias) {
      check_alias(*ref.alias);
      rows = db_->query("SELECT v.id, v.version, v.status FROM aliases a JOIN versions v ON v.id = a.version_id WHERE "
                        "a.model_id = ? AND a.alias = ?",
                        {r.model_id, *ref.alias});
      if (rows.empty()) {
        std::string known;
        for (const auto& a : db_->query("SELECT alias FROM aliases WHERE model_id = ? ORDER BY alias", {r.model_id}))
          known += (known.empty() ? "" : ", ") + a.str(0);
        throw UsageError("model '" + ref.name + "' has no alias '" + *ref.alias + "'" +
                         (known.empty() ? " (it has none)" : " (its aliases: " + known + ")"));
      }
    } else {
      rows = db_->query("SELECT id, version, status FROM versions WHERE model_id = ? AND status = 'READY' ORDER BY version "
                        "DESC LIMIT 1",
                        {r.model_id});
      if (rows.empty()) throw UsageError("model '" + ref.name + "' has no READY version");
    }
    r.version_id = rows[0].i64(0);
    r.version = rows[0].i64(1);
    r.status = parse_status(rows[0].str(2));
    return r;
  }

  void move_alias(int64_t model_id, const std::string& alias, int64_t version_id, int64_t version, const std::string& by,
                  const std::string& reason) {
    auto prev = db_->query("SELECT v.version FROM aliases a JOIN versions v ON v.id = a.version_id WHERE a.model_id = ? "
                           "AND a.alias = ?",
                           {model_id, alias});
    const std::string now = now_iso();
    db_->exec("INSERT INTO aliases (model_id, alias, version_id, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
              "(model_id, alias) DO UPDATE SET version_id = excluded.version_id, updated_at = excluded.updated_at, "
              "updated_by = excluded.updated_by",
              {model_id, alias, version_id, now, by});
    db_->exec("INSERT INTO alias_history (model_id, alias, version, previous, at, by_whom, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
              {model_id, alias, version, prev.empty() ? Param{} : Param{prev[0].i64(0)}, now, by, reason});
  }

  // Inside a transaction: the rows of these versions and everything hanging off them.
  void drop_versions(const std::vector<int64_t>& ids) {
    for (int64_t id : ids) {
      for (const char* table : {"version_tensors", "metrics", "tags"})
        db_->exec(std::string("DELETE FROM ") + table + " WHERE version_id = ?", {id});
      db_->exec("DELETE FROM aliases WHERE version_id = ?", {id});
      db_->exec("DELETE FROM versions WHERE id = ?", {id});
    }
  }

  void resolve_parent(const std::string& spec, std::string& parent, std::string& parent_digest) {
    std::error_code ec;
    if (fs::exists(spec, ec)) {
      parent_digest = file_content_digest(spec);
      auto rows = db_->query("SELECT m.name, v.version FROM versions v JOIN models m ON m.id = v.model_id WHERE v.digest = ? "
                             "AND v.status = 'READY' ORDER BY v.id LIMIT 1",
                             {parent_digest});
      parent = rows.empty() ? fs::absolute(spec).string() : rows[0].str(0) + "/" + rows[0].str(1);
      return;
    }
    Ref ref;
    try {
      ref = parse_ref(spec);
    } catch (const UsageError&) {
      throw UsageError("--parent '" + spec + "' is neither a file nor NAME/VERSION or NAME@ALIAS");
    }
    const Resolved r = resolve(ref);
    auto rows = db_->query("SELECT digest FROM versions WHERE id = ?", {r.version_id});
    if (r.status != Status::ready || rows.at(0).null(0))
      throw UsageError("--parent " + spec + " is " + status_text(r.status) + ", not a READY version");
    parent_digest = rows[0].str(0);
    parent = ref.name + "/" + std::to_string(r.version);
  }

  void check_stored_signature(const std::string& text, const Document& tree, const std::vector<ManifestTensor>& tensors,
                              const PublicKey& key, const std::string& label) {
    const StoredSignature s = parse_stored_signature(text, label);
    if (s.statement.key_id != key.id())
      throw IntegrityError("refusing to pull " + label + ": signed with key " + s.statement.key_id + ", not with " + key.id());
    const std::string msg = signed_message(s.statement);
    if (crypto_sign_verify_detached(s.signature.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                    key.bytes().data()) != 0)
      throw IntegrityError("refusing to pull " + label + ": its stored signature does not verify (changed in the database)");
    // The signed manifest covers every name, shape, dtype, attribute and tensor digest; each
    // blob is then checked against its digest as it is read.
    std::vector<std::pair<std::string, std::string>> digests;
    uint64_t bytes = 0;
    for (const auto& t : tensors) {
      digests.emplace_back(t.path, t.digest);
      bytes += t.nbytes;
    }
    const std::string manifest = canonical_manifest(tree, digests, ManifestEncoding::v2);
    if (digest_of(manifest) != s.statement.manifest_digest || tensors.size() != s.statement.tensors ||
        bytes != s.statement.tensor_bytes)
      throw IntegrityError("refusing to pull " + label + ": what the registry holds is not what key " + key.id() + " signed");
  }

  void write_through(const Document& tree, const FormatWriter::TensorSource& source, const fs::path& out,
                     const Format& format, bool durable, bool plain = false) {
    if (plain) {
      auto writer = format.open_writer(out, Options{});
      writer->write(tree, source);
      return;
    }
    // Core's atomic save, as convert writes: a target that is not a regular file (a FIFO, a
    // link to a device) is refused, and the temporary holds the lock `ckpt gc` and other saves
    // in the folder respect.
    SaveOptions so;
    so.fsync = durable;
    ckpt::write_document(tree, source, out, format, so);
  }

  struct Job {
    std::string path;
    Tensor data;  // mapped from the file, or read
    std::string digest;
    uint64_t owned = 0;  // bytes read into memory
  };
  struct Stored {
    std::vector<std::unique_ptr<Job>> jobs;
    uint64_t written = 0;
  };

  // Every tensor of the file into the store, hashed with BLAKE2b and written by a pool of
  // threads, a bounded amount in flight. There is no faster index in front of BLAKE2b: any
  // index whose key the registry's users can read lets one of them make a tensor collide with
  // another's, and an index that is only a hint still needs the BLAKE2b of every tensor (docs/
  // registry.md, "What each hash guarantees"). The database is used from this thread only.
  Stored store_tensors(FormatReader& reader, const Document& tree, const RegisterOptions& o, uint64_t total,
                       const std::unordered_map<std::string, uint64_t>& expected) {
    constexpr uint64_t kMaxOwnedInFlight = 256ull << 20;
    Stored out;
    std::mutex mu;
    uint64_t done = 0, written = 0;
    hashed_ = 0;
    auto advance = [&](uint64_t n, uint64_t w, uint64_t h) {
      std::lock_guard lock(mu);
      done += n;
      written += w;
      hashed_ += h;
      if (o.progress) o.progress(done, total);
    };
    std::deque<std::pair<Job*, std::future<void>>> in_flight;
    uint64_t owned_in_flight = 0;
    const unsigned threads = WorkPool::default_threads();
    FileMappings mappings;  // after the reader mapped its file
    auto pool = std::make_unique<WorkPool>(threads);
    // Whatever happens, every task has finished before `out` (whose jobs they use) goes.
    struct Join {
      std::unique_ptr<WorkPool>& p;
      ~Join() { p.reset(); }
    } join{pool};
    auto finish_one = [&] {
      auto [job, fut] = std::move(in_flight.front());
      in_flight.pop_front();
      owned_in_flight -= job->owned;
      fut.get();
    };
    auto dispatch = [&](Job* j) {
      while (!in_flight.empty() &&
             (owned_in_flight + j->owned > kMaxOwnedInFlight || in_flight.size() >= 2 * static_cast<size_t>(threads)))
        finish_one();
      owned_in_flight += j->owned;
      const auto bytes = j->data.bytes();
      // Bytes mapped from a file are copied file to file by the kernel; the store re-hashes
      // what it wrote before the blob takes the digest, so a source changed in between is
      // refused rather than stored under the wrong digest.
      std::optional<FileMappings::Source> src;
      if (!j->owned && bytes.size() >= (1u << 20)) src = mappings.find(bytes);
      // A tensor the previous version had (same path and size) is probably in the store: its
      // bytes are hashed where they are and, when the store holds them, nothing is written or
      // read again. Any other mapped tensor is probably new: copied first and the copy hashed,
      // so its bytes are hashed once, not once from the file and once as written. The guess
      // only picks the order; either way the stored blob's name is the BLAKE2b of its bytes.
      const auto hint = expected.find(j->path);
      const bool expect_stored = hint != expected.end() && hint->second == bytes.size();
      in_flight.emplace_back(j, pool->submit([this, j, src, expect_stored, &advance] {
        const auto b = j->data.bytes();
        if (src && !expect_stored) {
          const auto c = store_->copy_from_file(src->fd, src->offset, b.size());
          j->digest = c.digest;
          advance(b.size(), c.written, b.size());
          return;
        }
        if (!j->owned && !expect_stored) {
          // A small mapped tensor: copied into this process's memory, which nobody else
          // changes, and that copy hashed and written.
          const std::vector<std::byte> own(b.begin(), b.end());
          j->digest = blake2b256_hex(own);
          advance(b.size(), store_->put(j->digest, own, BlobStore::Source::own), b.size());
          return;
        }
        j->digest = blake2b256_hex(b);
        const uint64_t w = src ? store_->put_from_file(j->digest, src->fd, src->offset, b.size())
                               : store_->put(j->digest, b, j->owned ? BlobStore::Source::own : BlobStore::Source::shared);
        // What was written from a file or a mapping was hashed again as written.
        advance(b.size(), w, b.size() + (w && !j->owned ? w : 0));
      }));
    };
    tree.for_each_tensor([&](const std::string& path, const Tensor&) {
      auto job = std::make_unique<Job>();
      job->path = path;
      if (auto m = reader.map(path)) {
        job->data = *m;
      } else {
        job->data = reader.read(path);
        job->owned = job->data.nbytes();
      }
      Job* j = job.get();
      out.jobs.push_back(std::move(job));
      dispatch(j);
    });
    while (!in_flight.empty()) finish_one();
    out.written = written;
    return out;
  }

  // Path -> bytes of the tensors of the latest READY version of `name` before `version`, and of
  // the parent version: only a guess of which tensors the store already holds.
  std::unordered_map<std::string, uint64_t> previous_tensors(const std::string& name, int64_t version,
                                                             const std::string& parent_digest) {
    std::unordered_map<std::string, uint64_t> out;
    auto add = [&](const std::vector<Row>& ids) {
      if (ids.empty()) return;
      for (const auto& r : db_->query("SELECT path, nbytes FROM version_tensors WHERE version_id = ?", {ids[0].i64(0)}))
        out.emplace(r.str(0), static_cast<uint64_t>(r.i64(1)));
    };
    add(db_->query("SELECT v.id FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ? AND v.version < ? AND "
                   "v.status = 'READY' ORDER BY v.version DESC LIMIT 1",
                   {name, version}));
    if (!parent_digest.empty())
      add(db_->query("SELECT id FROM versions WHERE digest = ? AND status = 'READY' ORDER BY id LIMIT 1", {parent_digest}));
    return out;
  }

  bool adopt_store_ = false;
  bool record_store_ = false;
  uint64_t hashed_ = 0;
  std::unique_ptr<WorkPool> pool_for_pull_;
  Uri uri_;
  std::unique_ptr<Database> db_;
  fs::path store_path_;
  std::unique_ptr<BlobStore> store_;
};

}  // namespace

const char* status_name(Status s) { return status_text(s); }

std::unique_ptr<ModelRegistry> ModelRegistry::open(const std::string& uri, Open mode) {
  return std::make_unique<Impl>(parse_uri(uri), mode, kSchemaVersion);
}

std::unique_ptr<ModelRegistry> ModelRegistry::open_adopting_store(const std::string& uri) {
  return std::make_unique<Impl>(parse_uri(uri), Open::create, kSchemaVersion, /*adopt_store=*/true);
}

namespace detail {
// For tests: a registry made (or migrated) only up to `schema`.
std::unique_ptr<ModelRegistry> open_at_schema(const std::string& uri, int64_t schema) {
  return std::make_unique<Impl>(parse_uri(uri), ModelRegistry::Open::create, schema);
}
}  // namespace detail

ResolvedInput::ResolvedInput(const std::string& spec) {
  if (!is_registry_reference(spec)) {
    path_ = spec;
    return;
  }
  Ref ref;
  try {
    ref = parse_ref(spec.substr(std::strlen(kRegistryPrefix)));
  } catch (const UsageError& e) {
    throw UsageError(std::string(e.what()) + " (an input starting with \"registry:\" names a registry version; a file of " +
                     "that name is ./" + spec + ")");
  }
  auto reg = ModelRegistry::open(default_uri(), ModelRegistry::Open::read);
  const VersionInfo v = reg->show(ref);
  const Format f = Registry::global().get(v.format);
  std::string ext = f.info().extensions.empty() ? "" : f.info().extensions.front();
  if (!ext.empty() && ext[0] != '.') ext = "." + ext;
  const fs::path base = fs::temp_directory_path() / "ckpt-registry-XXXXXX";
  std::string templ = base.string();
  if (!::mkdtemp(templ.data())) throw IoError("cannot create a folder under " + base.parent_path().string() + ": " + std::strerror(errno));
  dir_ = templ;
  path_ = dir_ / (v.name + "-" + std::to_string(v.version) + ext);
  PullOptions o;
  o.to = v.format;
  o.fsync = false;  // a scratch copy for this process
  reg->pull(Ref{v.name, v.version, std::nullopt}, path_, o);
}

ResolvedInput::~ResolvedInput() {
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

}  // namespace ckpt::model_registry
