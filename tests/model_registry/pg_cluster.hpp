// A throwaway PostgreSQL cluster for the registry tests: initdb into a temporary folder, the
// server listening only on a Unix socket in that folder (listen_addresses=''), stopped and
// removed at the end. As root, the server runs as the `postgres` user (initdb refuses root).
// A missing server is a failure, never a skip: the set-up script installs postgresql.
//
// A test process that is killed cannot stop its cluster. So each cluster folder records its
// owner (pid and start time, "owner"), and every new cluster first stops and removes the
// clusters of owners that are gone; SIGINT, SIGTERM and SIGHUP stop this process's server (an
// immediate shutdown) before the process dies as the signal says.
#pragma once

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <pwd.h>
#include <random>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
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
    reap_stale();
    dir_ = fs::path(kBase) / (std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}() % 100000));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "owner") << ::getpid() << " " << start_time(::getpid()) << "\n";
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
    server_pid() = postmaster_of(dir_);
    install_signal_handlers();
  }

  ~PgCluster() {
    if (started_) {
      std::string out;
      run(as_ + (bin_ / "pg_ctl").string() + " -D " + (dir_ / "data").string() + " -m immediate -w stop", out);
      server_pid() = 0;
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

  static constexpr const char* kBase = "/tmp";
  static constexpr const char* kPrefix = "ckpt-pg-";

  // Stops and removes the clusters (kBase/kPrefix*) whose owner is gone: a different process, or
  // none, now has the recorded pid. A folder without an owner file is left for a minute (its
  // owner may be writing it). Returns the folders removed.
  static std::vector<fs::path> reap_stale() {
    std::vector<fs::path> removed;
    std::error_code ec;
    for (fs::directory_iterator it(kBase, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code sec;
      if (name.rfind(kPrefix, 0) != 0 || it->symlink_status(sec).type() != fs::file_type::directory) continue;
      std::ifstream in(it->path() / "owner");
      long pid = 0;
      std::string started;
      if (!(in >> pid >> started)) {
        // No owner file (being written, or a cluster of a build before owner files): the pid in
        // the folder's name, while such a process lives, and a minute's grace.
        const long named = std::atol(name.c_str() + std::strlen(kPrefix));
        const auto age = fs::file_time_type::clock::now() - fs::last_write_time(it->path(), sec);
        if (sec || age < std::chrono::minutes(1) || (named > 0 && alive(static_cast<pid_t>(named)))) continue;
      } else if (pid > 0 && start_time(static_cast<pid_t>(pid)) == started) {
        continue;  // its owner is alive
      }
      if (const pid_t server = postmaster_of(it->path()); server > 0) {
        ::kill(server, SIGQUIT);  // immediate shutdown
        for (int i = 0; i < 100 && alive(server); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      fs::remove_all(it->path(), sec);
      if (!sec) removed.push_back(it->path());
    }
    return removed;
  }

  // A process with that pid exists and has not exited (a zombie nobody reaped has).
  static bool alive(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return false;
    const size_t close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
  }

  // The running postmaster of the cluster in `dir` (data/postmaster.pid names it and its data
  // folder, and /proc says it is alive and a postgres), or 0.
  static pid_t postmaster_of(const fs::path& dir) {
    std::ifstream in(dir / "data" / "postmaster.pid");
    long pid = 0;
    std::string data;
    if (!(in >> pid) || pid <= 0 || !(in >> data) || fs::path(data) != dir / "data") return 0;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    return comm >> name && name.find("postgres") != std::string::npos && alive(static_cast<pid_t>(pid)) ? static_cast<pid_t>(pid)
                                                                                                         : 0;
  }

 private:
  // Field 22 of /proc/PID/stat (start time in clock ticks since boot): with the pid, names one
  // process even after pids wrap around. Empty when there is no such process.
  static std::string start_time(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return {};
    const size_t close = line.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return {};
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
      if (i == 22) return field;
    }
    return {};
  }

  static volatile pid_t& server_pid() {
    static volatile pid_t pid = 0;
    return pid;
  }

  // Only what is async-signal-safe: signal the server, then die of the signal as before.
  static void on_signal(int sig) {
    if (const pid_t p = server_pid(); p > 0) ::kill(p, SIGQUIT);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
  }

  static void install_signal_handlers() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;  // someone else's
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  }

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
