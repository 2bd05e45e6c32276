// The model registry (docs/registry.md): named models with numbered versions, aliases that move
// (with their history), tags, metrics and lineage, kept in SQLite or PostgreSQL; each version's
// tensors are stored once per content digest in a store folder beside the database.
//
// Not to be confused with ckpt/registry.hpp, the registry of format plugins.
#pragma once

#include <ckpt/keys.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt::model_registry {

namespace fs = std::filesystem;

// The schema this build writes; an older registry is migrated on open, a newer one refused.
inline constexpr int64_t kSchemaVersion = 5;
inline constexpr const char* kDefaultUri = "sqlite://ckpt-registry/registry.db";
inline constexpr const char* kUriEnvironment = "CKPT_REGISTRY";

// sqlite:///abs/path.db, sqlite://relative/path.db, a bare path (SQLite), or
// postgresql://user@host/db / postgresql:///db?host=/socket/dir (libpq's URI syntax) with an
// optional store=/folder parameter naming the blob store.
struct Uri {
  enum class Kind { sqlite, postgresql };
  Kind kind = Kind::sqlite;
  std::string text;            // as given
  fs::path sqlite_path{};      // sqlite
  std::string conninfo{};      // postgresql, store= removed
  std::optional<fs::path> store{};
};
// Throws UsageError naming the URI and what is wrong.
Uri parse_uri(const std::string& text);
// The URI as it may be shown: a password (user:password@, password=) replaced by ***.
std::string redact_uri(const std::string& text);
// $CKPT_REGISTRY, else kDefaultUri.
std::string default_uri();

// NAME, NAME/VERSION or NAME@ALIAS.
struct Ref {
  std::string name;
  std::optional<int64_t> version{};
  std::optional<std::string> alias{};
  std::string text() const;
};
Ref parse_ref(const std::string& text);
// Model names and aliases: 1-128 of [A-Za-z0-9._-], not starting with '.' or '-'; an alias is
// not all digits (that would read as a version).
void check_model_name(const std::string& name);
void check_alias(const std::string& alias);

enum class Status { pending, ready, deleted };
const char* status_name(Status s);

struct RegisterOptions {
  std::string name;
  std::vector<std::string> aliases{};
  std::vector<std::pair<std::string, std::string>> tags{};
  std::string description{};
  std::string format = "auto";  // of the file
  // What this version was resumed or fine-tuned from: NAME/VERSION, NAME@ALIAS or a checkpoint
  // file; recorded by content digest (and by version when it is in this registry).
  std::string parent{};
  // Metrics beside those the checkpoint records under trainer/metrics.
  std::vector<std::pair<std::string, double>> metrics{};
  std::optional<std::string> run_start{}, run_end{};
  std::string run_config_file{};  // its content is recorded; else trainer/config of the file
  // Refuse the file unless FILE.sig (or `signature`) is valid for this key; the registry's own
  // required key (init --require-signed) applies as well.
  std::optional<PublicKey> require_signed{};
  fs::path signature{};
  bool fsync = true;  // false only for benchmarks of the page cache
  // Called with bytes done and total as tensors are stored (from worker threads).
  std::function<void(uint64_t, uint64_t)> progress{};
};

struct VersionInfo {
  std::string name;
  int64_t version = 0;
  Status status = Status::pending;
  std::string description;
  std::string format;  // of the registered file
  std::string source;  // the file's path when registered
  uint64_t tensors = 0;
  uint64_t bytes = 0;            // tensor bytes
  uint64_t bytes_written = 0;    // blob bytes this registration added to the store
  uint64_t bytes_hashed = 0;     // bytes it hashed with BLAKE2b (every tensor byte)
  std::string digest;            // BLAKE2b-256 of the manifest: the version's content
  std::string created_at, ready_at, deleted_at;
  std::string registered_by;     // user@host pid
  std::string ckpt_version;      // of the registering ckpt
  std::string producer;          // meta/producer of the file
  std::string signer;            // key id when signed
  std::optional<int64_t> step{}, seed{};
  std::string run_config, run_start, run_end, run_host;
  std::string parent_digest, parent;  // parent: NAME/VERSION when known, else the file
  std::vector<std::pair<std::string, double>> metrics;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<std::string> aliases;
};

struct TensorEntry {
  std::string path;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::string digest;  // BLAKE2b-256 of its bytes: the blob's name
};

struct ModelInfo {
  std::string name;
  std::string created_at;
  int64_t versions = 0;  // not deleted
  int64_t latest = 0;
  std::vector<std::pair<std::string, int64_t>> aliases;
};

struct AliasMove {
  std::string alias;
  std::optional<int64_t> version;   // none: removed
  std::optional<int64_t> previous;  // none: newly set
  std::string at, by, reason;
};

struct SearchQuery {
  std::string name{};  // empty: every model
  std::string metric{};  // order by it; versions without it are left out
  bool maximize = true;
  std::vector<std::pair<std::string, std::string>> tags{};
  size_t limit = 20;
};

struct GcOptions {
  bool dry_run = false;
  // How long to wait for registrations in progress to finish (they hold the store's lock).
  double wait_seconds = 600;
};
struct GcReport {
  size_t pending_removed = 0;
  size_t deleted_removed = 0;
  size_t blobs_removed = 0;
  uint64_t bytes_removed = 0;
  size_t temporaries_removed = 0;
  std::vector<std::string> versions;  // NAME/VERSION (status) removed
};

struct PullOptions {
  std::string to = "auto";  // auto: OUT's extension, else the registered format
  bool allow_lossy = false;
  // Kept for callers of schema 4's API: every pull checks each blob against its BLAKE2b-256.
  bool blake2b = false;
  std::optional<PublicKey> require_signed{};
  bool fsync = true;
  std::function<void(uint64_t, uint64_t)> progress{};
  // Blobs under 1 MiB are read rather than mapped and held until the writer is done (writers
  // may look back at earlier tensors). Beyond this many bytes of them, they are read into an
  // unnamed temporary file beside OUT, mapped once, instead of this process's memory.
  uint64_t memory_limit = 256ull << 20;
};
struct PullReport {
  VersionInfo version;
  std::string format;
  uint64_t tensors = 0, bytes = 0;
  bool signature_checked = false;
  bool blake2b_checked = false;  // every blob against its BLAKE2b-256 (always, since schema 5)
  std::vector<std::string> losses;  // what --to lost (with allow_lossy)
  uint64_t spilled_bytes = 0;       // small blobs held in a temporary file (memory_limit)
};

struct VerifyVersionReport {
  uint64_t tensors = 0, bytes = 0;
  std::vector<std::string> problems;  // each names the tensor and blob
  // Damaged blobs moved out of blobs/ (into the store's tmp/, which gc empties), so that the
  // next registration of their bytes stores them again; 0 when the store could not be locked.
  uint64_t blobs_set_aside = 0;
};

class ModelRegistry {
 public:
  // read: for commands that only read (list, show, history, search, pull, verify): an SQLite
  // registry whose folder this user may not write is opened read-only (an older schema is then
  // refused, not migrated); otherwise as existing.
  enum class Open { existing, create, read };
  // Opens (Open::create: creates when missing) and migrates an older schema. Throws
  // UsageError for a bad URI or a missing registry, FormatError for a database that is not a
  // registry, UnsupportedError for a newer schema.
  static std::unique_ptr<ModelRegistry> open(const std::string& uri, Open mode = Open::existing);
  // As open(uri, Open::create), and a store that holds blobs but no store id (made before stores
  // had ids), which open() refuses, is taken as this registry's own: its id is recorded.
  static std::unique_ptr<ModelRegistry> open_adopting_store(const std::string& uri);
  virtual ~ModelRegistry() = default;

  virtual int64_t schema_version() = 0;
  virtual const fs::path& store() const = 0;
  virtual std::string describe() const = 0;
  // Versions registered from now on must carry a valid signature by this key.
  virtual void require_signed(const PublicKey& key) = 0;
  virtual std::optional<PublicKey> required_key() = 0;

  virtual VersionInfo register_checkpoint(const fs::path& file, const RegisterOptions& options) = 0;
  virtual std::vector<ModelInfo> list_models() = 0;
  virtual std::vector<VersionInfo> list_versions(const std::string& name, bool include_deleted = false) = 0;
  virtual VersionInfo show(const Ref& ref) = 0;
  // Every tensor of the version, in document order, with its digest.
  virtual std::vector<TensorEntry> tensors(const Ref& ref) = 0;
  virtual void set_alias(const std::string& name, const std::string& alias, int64_t version) = 0;
  virtual void remove_alias(const std::string& name, const std::string& alias) = 0;
  virtual void set_tag(const Ref& ref, const std::string& key, const std::string& value) = 0;
  virtual void remove_tag(const Ref& ref, const std::string& key) = 0;
  virtual std::vector<AliasMove> history(const std::string& name, const std::string& alias) = 0;
  virtual std::vector<VersionInfo> search(const SearchQuery& query) = 0;
  virtual void delete_version(const std::string& name, int64_t version) = 0;
  virtual GcReport gc(const GcOptions& options = {}) = 0;
  virtual PullReport pull(const Ref& ref, const fs::path& out, const PullOptions& options = {}) = 0;
  // Re-hashes every blob of the version.
  virtual VerifyVersionReport verify(const Ref& ref) = 0;
};

// For commands that take a checkpoint path: "registry:NAME@ALIAS" (or NAME/VERSION) is pulled
// from default_uri() into a temporary file in its registered format, removed with the object;
// anything else is returned as it is.
class ResolvedInput {
 public:
  explicit ResolvedInput(const std::string& spec);
  ~ResolvedInput();
  ResolvedInput(const ResolvedInput&) = delete;
  ResolvedInput& operator=(const ResolvedInput&) = delete;
  const fs::path& path() const { return path_; }
  bool from_registry() const { return !dir_.empty(); }

 private:
  fs::path path_;
  fs::path dir_;
};
inline constexpr const char* kRegistryPrefix = "registry:";
// An input that starts with "registry:" always names a version of the registry, whether or not
// a file of that name exists; a file whose name starts so is named with a folder in front
// (./registry:x), which no reference has.
inline bool is_registry_reference(std::string_view spec) { return spec.starts_with(kRegistryPrefix); }

}  // namespace ckpt::model_registry
