#include "schema.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <string>

namespace ckpt::model_registry::detail {

namespace {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Migration 1: the data model. BIGINT everywhere a count or size goes (PostgreSQL's INTEGER is
// 32 bits; SQLite gives BIGINT the same integer affinity). models.last_version hands out version
// numbers, so that a number is never reused after gc removes a version.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE models (
  id @ID@,
  name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  last_version BIGINT NOT NULL DEFAULT 0);
CREATE TABLE versions (
  id @ID@,
  model_id BIGINT NOT NULL REFERENCES models(id),
  version BIGINT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('PENDING', 'READY', 'DELETED')),
  description TEXT NOT NULL DEFAULT '',
  format TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  manifest TEXT,
  digest TEXT,
  tensors BIGINT NOT NULL DEFAULT 0,
  bytes BIGINT NOT NULL DEFAULT 0,
  bytes_written BIGINT NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  ready_at TEXT,
  deleted_at TEXT,
  registered_by TEXT NOT NULL DEFAULT '',
  ckpt_version TEXT NOT NULL DEFAULT '',
  producer TEXT NOT NULL DEFAULT '',
  signature TEXT,
  signer TEXT,
  step BIGINT,
  seed BIGINT,
  run_config TEXT,
  run_start TEXT,
  run_end TEXT,
  run_host TEXT,
  parent_digest TEXT,
  parent TEXT,
  UNIQUE (model_id, version));
CREATE INDEX versions_by_model ON versions (model_id, status);
CREATE TABLE version_tensors (
  version_id BIGINT NOT NULL REFERENCES versions(id),
  path TEXT NOT NULL,
  digest TEXT NOT NULL,
  nbytes BIGINT NOT NULL,
  PRIMARY KEY (version_id, path));
CREATE TABLE metrics (
  version_id BIGINT NOT NULL REFERENCES versions(id),
  key TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (version_id, key));
CREATE TABLE tags (
  version_id BIGINT NOT NULL REFERENCES versions(id),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (version_id, key));
CREATE TABLE aliases (
  model_id BIGINT NOT NULL REFERENCES models(id),
  alias TEXT NOT NULL,
  version_id BIGINT NOT NULL REFERENCES versions(id),
  updated_at TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  PRIMARY KEY (model_id, alias));
CREATE TABLE alias_history (
  id @ID@,
  model_id BIGINT NOT NULL REFERENCES models(id),
  alias TEXT NOT NULL,
  version BIGINT,
  previous BIGINT,
  at TEXT NOT NULL,
  by_whom TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '');
)sql";

// Migration 2: the indexes that gc (blobs by digest), search (metrics and tags by key) and
// history read by; registries made by the first schema get them on open.
constexpr const char* kMigration2 = R"sql(
CREATE INDEX version_tensors_by_digest ON version_tensors (digest);
CREATE INDEX metrics_by_key ON metrics (key, value);
CREATE INDEX tags_by_key ON tags (key, value);
CREATE INDEX alias_history_by_alias ON alias_history (model_id, alias, id);
)sql";

// Migration 3: a keyed XXH3-128 of each stored tensor -> its BLAKE2b-256, so that a new version
// finds its unchanged tensors at memory speed instead of re-hashing them with BLAKE2b
// (docs/registry.md, "Storage").
constexpr const char* kMigration3 = R"sql(
CREATE TABLE fast_digests (fast TEXT PRIMARY KEY, digest TEXT NOT NULL);
CREATE INDEX fast_digests_by_digest ON fast_digests (digest);
)sql";

// Migration 4: each tensor row keeps its keyed XXH3-128 too, so that a pull can check a blob
// against it at memory speed (docs/registry.md, "Reads re-hash").
constexpr const char* kMigration4 = R"sql(
ALTER TABLE version_tensors ADD COLUMN fast TEXT;
)sql";

// Migration 5: the keyed XXH3 index and records go. Every user of a registry can read its key,
// and with the key XXH3 collisions are made at will: a tensor registered later was stored as
// another's earlier tensor. Registration and pull now use BLAKE2b-256 only.
constexpr const char* kMigration5 = R"sql(
DROP TABLE fast_digests;
ALTER TABLE version_tensors DROP COLUMN fast;
DELETE FROM settings WHERE key = 'fast_hash_secret';
)sql";

constexpr const char* kMigrations[] = {kMigration1, kMigration2, kMigration3, kMigration4, kMigration5};
static_assert(std::size(kMigrations) == kSchemaVersion);

std::vector<std::string> other_tables(Database& db) {
  std::vector<std::string> names;
  const auto rows =
      db.backend() == Backend::sqlite
          ? db.query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
          : db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1");
  for (const auto& r : rows) names.push_back(r.str(0));
  return names;
}

}  // namespace

int64_t prepare_schema(Database& db, OpenMode mode, int64_t target) {
  if (target < 1 || target > kSchemaVersion) throw UsageError("no schema version " + std::to_string(target));
  // Read before taking any lock or changing anything: a database that is not a registry, or a
  // newer one, is left exactly as it was.
  auto found = [&]() -> std::optional<int64_t> {
    if (!db.table_exists("schema_version")) return std::nullopt;
    auto rows = db.query("SELECT version FROM schema_version");
    if (rows.size() != 1) throw FormatError(db.where() + ": schema_version holds " + std::to_string(rows.size()) +
                                            " rows, a registry has exactly one");
    return rows[0].i64(0);
  };
  std::optional<int64_t> before = found();
  if (!before) {
    auto tables = other_tables(db);
    if (!tables.empty()) {
      std::string list;
      for (size_t i = 0; i < tables.size() && i < 8; ++i) list += (i ? ", " : "") + tables[i];
      throw FormatError(db.where() + " is not a ckpt model registry (it has no schema_version table; its tables: " + list +
                        (tables.size() > 8 ? ", ..." : "") + ")");
    }
    if (mode == OpenMode::existing)
      throw UsageError("no model registry in " + db.where() + " (it is empty; `ckpt registry init` or a register makes one)");
  }
  auto newer = [&](int64_t v) {
    if (v > kSchemaVersion)
      throw UnsupportedError(db.where() + " is a registry of schema version " + std::to_string(v) +
                             ", newer than this build of ckpt understands (" + std::to_string(kSchemaVersion) +
                             "); use a newer ckpt. Nothing was changed.");
    if (v < 0) throw FormatError(db.where() + ": schema version " + std::to_string(v));
  };
  if (before) newer(*before);
  if (before && *before >= target) return *before;
  if (db.read_only())
    throw UsageError(db.where() + " is a registry of schema version " + std::to_string(*before) + " and needs migrating to " +
                     std::to_string(target) + ", which takes write access: run `ckpt registry init --registry URI` once as a " +
                     "user who may write it. Nothing was changed.");

  Transaction t(db);
  db.lock_for_migration();
  // Another process may have created or migrated it while this one waited for the lock.
  std::optional<int64_t> now = found();
  if (now) newer(*now);
  int64_t v = now.value_or(0);
  if (!now) {
    db.exec_script("CREATE TABLE schema_version (version BIGINT NOT NULL)");
    db.exec("INSERT INTO schema_version (version) VALUES (0)");
  }
  for (; v < target; ++v) {
    db.exec_script(replace_all(kMigrations[v], "@ID@", db.id_column()));
    db.exec("UPDATE schema_version SET version = ?", {v + 1});
  }
  t.commit();
  return before.value_or(0);
}

}  // namespace ckpt::model_registry::detail
