// SQLite: WAL so that readers never wait for a registration, a busy timeout so that writers
// queue instead of failing, synchronous=FULL so that a READY version survives a power cut.
#include "database.hpp"

#include <ckpt/errors.hpp>

#include <sqlite3.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <system_error>

namespace ckpt::model_registry::detail {

namespace {

// Long enough for eight registrants queueing on one file; a registration holds the write lock
// only for a few statements at a time.
constexpr int kBusyTimeoutMs = 120'000;

struct StatementCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementCloser>;

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(const fs::path& path, SqliteAccess access) : where_("sqlite database " + path.string()) {
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    const bool create = access == SqliteAccess::create;
    if (!exists && !create) throw UsageError("no registry at " + path.string() + " (the file does not exist)");
    if (exists && !fs::is_regular_file(path, ec))
      throw UsageError(where_ + ": not a regular file");
    if (access == SqliteAccess::read_only) {
      open_read_only(path);
      return;
    }
    connect(path.c_str(), SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0));
    // The first read of the file: a file that is not SQLite at all fails here (SQLITE_NOTADB).
    query("SELECT count(*) FROM sqlite_master");
  }

  bool read_only() const override { return read_only_; }

  Backend backend() const override { return Backend::sqlite; }
  const std::string& where() const override { return where_; }

  std::vector<Row> query(std::string_view sql, const std::vector<Param>& params = {}) override {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    Statement st(raw);
    if (rc != SQLITE_OK) fail(rc, "cannot prepare '" + std::string(sql) + "'");
    for (size_t i = 0; i < params.size(); ++i) {
      const int k = static_cast<int>(i + 1);
      const Param& p = params[i];
      if (std::holds_alternative<std::monostate>(p))
        rc = sqlite3_bind_null(raw, k);
      else if (auto* v = std::get_if<int64_t>(&p))
        rc = sqlite3_bind_int64(raw, k, *v);
      else if (auto* d = std::get_if<double>(&p))
        // SQLite turns a bound NaN into NULL (and a NOT NULL column refuses it): kept as the
        // text PostgreSQL uses, which Row::f64 reads back.
        rc = std::isnan(*d) ? sqlite3_bind_text(raw, k, "NaN", 3, SQLITE_STATIC) : sqlite3_bind_double(raw, k, *d);
      else {
        const std::string& s = std::get<std::string>(p);
        rc = sqlite3_bind_text64(raw, k, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) fail(rc, "cannot bind parameter " + std::to_string(k));
    }
    std::vector<Row> rows;
    for (;;) {
      rc = sqlite3_step(raw);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(rc, "'" + std::string(sql.substr(0, 80)) + "' failed");
      Row r;
      const int n = sqlite3_column_count(raw);
      r.cells.reserve(static_cast<size_t>(n));
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(raw, c)) {
          case SQLITE_NULL:
            r.cells.emplace_back(std::nullopt);
            break;
          case SQLITE_INTEGER:
            r.cells.emplace_back(std::to_string(sqlite3_column_int64(raw, c)));
            break;
          case SQLITE_FLOAT: {
            // Shortest text that reads back as the same double: SQLite's own text rendering
            // keeps 15 digits and would change metrics on the way out.
            std::array<char, 32> buf{};
            auto res = std::to_chars(buf.data(), buf.data() + buf.size(), sqlite3_column_double(raw, c));
            r.cells.emplace_back(std::string(buf.data(), res.ptr));
            break;
          }
          default: {
            const auto* t = static_cast<const char*>(sqlite3_column_blob(raw, c));
            const int len = sqlite3_column_bytes(raw, c);
            r.cells.emplace_back(t ? std::string(t, static_cast<size_t>(len)) : std::string());
          }
        }
      }
      rows.push_back(std::move(r));
    }
    return rows;
  }

  void exec_script(std::string_view sql) override {
    char* err = nullptr;
    const std::string text(sql);
    int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      fail(rc, msg);
    }
  }

  void begin() override { exec_script("BEGIN IMMEDIATE"); }
  void commit() override { exec_script("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr); }

  bool table_exists(std::string_view table) override {
    return !query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", {std::string(table)}).empty();
  }
  void lock_for_migration() override {}
  std::string_view id_column() const override { return "INTEGER PRIMARY KEY"; }
  std::string_view for_update() const override { return ""; }

 private:
  void connect(const std::string& name, int flags) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(name.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) fail(rc, "cannot open");
    sqlite3_extended_result_codes(db_.get(), 1);
    sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
    // Per connection, nothing written: a database that turns out not to be a registry is left
    // as it was (WAL is switched on once the schema is known to be ours).
    exec_script("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL");
  }

  // For a user who may read the registry but not write its folder (https://sqlite.org/wal.html,
  // "Read-Only Databases"): a WAL database opened with SQLITE_OPEN_READONLY is read through the
  // -wal and -shm files when they exist (SQLite keeps its own copy of the index when -shm is not
  // writable). When they do not, no writer is connected (the last connection to close
  // checkpoints the WAL into the database and removes both), so the database file is whole and
  // is opened as immutable rather than failing to create -shm.
  void open_read_only(const fs::path& path) {
    read_only_ = true;
    try {
      connect(path.string(), SQLITE_OPEN_READONLY);
      query("SELECT count(*) FROM sqlite_master");
      return;
    } catch (const IoError&) {
      std::error_code ec;
      if (fs::exists(path.string() + "-wal", ec))
        throw IoError(where_ + ": cannot be read without write access to its folder while its write-ahead log (" +
                      path.string() + "-wal) has no shared-memory index (-shm) beside it; retry once the registry's "
                      "writers are done, or ask its owner");
    }
    connect(immutable_uri(path), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
    query("SELECT count(*) FROM sqlite_master");
  }

  // file: URI of an absolute path, every byte that is not unreserved percent-encoded.
  static std::string immutable_uri(const fs::path& path) {
    const std::string p = fs::absolute(path).lexically_normal().string();
    std::string out = "file:";
    static const char* hex = "0123456789ABCDEF";
    for (unsigned char c : p) {
      if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    return out + "?immutable=1";
  }

  [[noreturn]] void fail(int rc, const std::string& what) const {
    const int primary = rc & 0xff;
    std::string msg = where_ + ": " + what;
    const char* detail = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
    if (detail && msg.find(detail) == std::string::npos) msg += ": " + std::string(detail);
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
      throw FormatError(msg + " (not an SQLite database, or a damaged one)");
    if (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_READONLY ||
        primary == SQLITE_BUSY || primary == SQLITE_PERM)
      throw IoError(msg);
    throw Error(msg);
  }

  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
  std::string where_;
  bool read_only_ = false;
};

}  // namespace

std::unique_ptr<Database> open_sqlite(const fs::path& path, SqliteAccess access) {
  return std::make_unique<SqliteDatabase>(path, access);
}

}  // namespace ckpt::model_registry::detail
