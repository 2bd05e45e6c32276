// A throwaway PostgreSQL cluster for the registry tests: initdb into a temporary folder, the
// server listening only on a Unix socket in that folder (listen_addresses=''), stopped and
// removed at the end. As root, the server runs as the `postgres` user (initdb refuses root).
// A missing server is a failure, never a skip: the set-up script installs postgresql.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <pwd.h>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "../support/scratch.hpp"

namespace ckpt_test {

namespace fs = std::filesystem;

class PgCluster {
 public:
  PgCluster() {
    bin_ = find_bin();
    if (bin_.empty()) {
      error_ = "PostgreSQL server programs (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin: "
               "install Debian's postgresql (scripts/setup.sh does)";
      return;
    }
    dir_ = fs::path("/tmp") / ("ckpt-pg-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}() % 100000));
    fs::create_directories(dir_);
    std::string as;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (!pw) {
        error_ = "running as root and there is no 'postgres' user to run the server as (Debian's postgresql makes it)";
        return;
      }
      if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        error_ = "cannot hand " + dir_.string() + " to the postgres user";
        return;
      }
      as = "runuser -u postgres -- ";
    }
    std::string out;
    const std::string data = (dir_ / "data").string();
    if (run(as + (bin_ / "initdb").string() + " -D " + data + " -A trust -U ckpt --no-sync -E UTF8 --locale=C.UTF-8", out) != 0) {
      error_ = "initdb failed: " + out;
      return;
    }
    const std::string opts = "-c listen_addresses='' -k " + dir_.string() + " -c fsync=off -c max_connections=40";
    if (run(as + (bin_ / "pg_ctl").string() + " -D " + data + " -l " + (dir_ / "log").string() + " -w -t 60 -o \"" + opts +
                "\" start",
            out) != 0) {
      std::ifstream log(dir_ / "log");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      error_ = "pg_ctl start failed: " + out + "\n" + text;
      return;
    }
    as_ = as;
    started_ = true;
  }

  ~PgCluster() {
    if (started_) {
      std::string out;
      run(as_ + (bin_ / "pg_ctl").string() + " -D " + (dir_ / "data").string() + " -m immediate -w stop", out);
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  bool ok() const { return started_; }
  const std::string& error() const { return error_; }
  const fs::path& socket_dir() const { return dir_; }
  // libpq URI of database `db` on this cluster.
  std::string uri(const std::string& db) const { return "postgresql:///" + db + "?host=" + dir_.string() + "&user=ckpt"; }
  // Runs `sql` in database `db` with psql; an error message, or empty.
  std::string psql(const std::string& db, const std::string& sql) const {
    std::string out;
    const fs::path psql = bin_ / "psql";
    const std::string cmd = (fs::exists(psql) ? psql.string() : std::string("psql")) + " -X -q -v ON_ERROR_STOP=1 -h " +
                            dir_.string() + " -U ckpt -d " + db + " -c '" + sql + "'";
    return run(cmd, out) == 0 ? std::string() : sql + " failed: " + out;
  }
  std::string create_database(const std::string& db) const { return psql("postgres", "CREATE DATABASE " + db); }

 private:
  static fs::path find_bin() {
    if (const char* path = std::getenv("PATH")) {
      std::string p = path;
      size_t start = 0;
      while (start <= p.size()) {
        size_t end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        const fs::path d = p.substr(start, end - start);
        std::error_code ec;
        if (!d.empty() && fs::exists(d / "initdb", ec) && fs::exists(d / "pg_ctl", ec))
          return fs::canonical(d / "initdb", ec).parent_path();
        start = end + 1;
      }
    }
    std::error_code ec;
    std::vector<fs::path> found;
    for (fs::directory_iterator it("/usr/lib/postgresql", ec), end; !ec && it != end; it.increment(ec))
      if (fs::exists(it->path() / "bin" / "initdb")) found.push_back(it->path() / "bin");
    std::sort(found.begin(), found.end());
    return found.empty() ? fs::path() : found.back();
  }

  fs::path bin_, dir_;
  std::string as_, error_;
  bool started_ = false;
};

}  // namespace ckpt_test
