// The little SQL the registry needs, over SQLite or PostgreSQL: parameterised statements whose
// results come back as text cells, and write transactions. SQL is written once with `?`
// placeholders; the PostgreSQL side numbers them ($1, $2, ...).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ckpt::model_registry::detail {

namespace fs = std::filesystem;

using Param = std::variant<std::monostate, int64_t, double, std::string>;

struct Row {
  std::vector<std::optional<std::string>> cells;
  bool null(size_t i) const { return !cells.at(i).has_value(); }
  const std::string& str(size_t i) const;
  std::string str_or(size_t i, std::string fallback) const { return null(i) ? fallback : *cells[i]; }
  int64_t i64(size_t i) const;
  double f64(size_t i) const;
  std::optional<int64_t> opt_i64(size_t i) const {
    return null(i) ? std::nullopt : std::optional<int64_t>(i64(i));
  }
};

enum class Backend { sqlite, postgresql };

class Database {
 public:
  virtual ~Database() = default;
  virtual Backend backend() const = 0;
  // Where the database is, for messages ("sqlite file /x/registry.db").
  virtual const std::string& where() const = 0;
  virtual std::vector<Row> query(std::string_view sql, const std::vector<Param>& params = {}) = 0;
  void exec(std::string_view sql, const std::vector<Param>& params = {}) { query(sql, params); }
  // Several statements without parameters (migrations).
  virtual void exec_script(std::string_view sql) = 0;
  // A transaction that takes the write lock at once: on SQLite a deferred transaction that
  // reads first and writes later can fail with SQLITE_BUSY where waiting would have worked.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  virtual bool table_exists(std::string_view table) = 0;
  // Serialises schema migrations between processes, held until the transaction ends
  // (PostgreSQL: an advisory lock; SQLite: the write lock begin() took already).
  virtual void lock_for_migration() = 0;
  // The column type of an auto-numbered primary key.
  virtual std::string_view id_column() const = 0;
  // Appended to a SELECT that reads a row the transaction will update (no-op on SQLite, whose
  // transactions are serialised anyway).
  virtual std::string_view for_update() const = 0;
  // Opened for reading only (SQLite without write access to the registry's folder).
  virtual bool read_only() const { return false; }
};

// Commits only when told; anything else (an exception) rolls back.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) { db_.begin(); }
  ~Transaction() {
    if (!done_) db_.rollback();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    db_.commit();
    done_ = true;
  }

 private:
  Database& db_;
  bool done_ = false;
};

// create: make the file when missing; otherwise a missing file is a UsageError. read_only:
// SQLITE_OPEN_READONLY, for users who may not write the registry's folder.
enum class SqliteAccess { existing, create, read_only };
std::unique_ptr<Database> open_sqlite(const fs::path& path, SqliteAccess access);
// A libpq connection string or URI.
std::unique_ptr<Database> open_postgresql(const std::string& conninfo, const std::string& shown);

}  // namespace ckpt::model_registry::detail
