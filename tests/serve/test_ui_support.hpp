// What the web page's tests share: requests through a Router, checkpoints written by ckpt and by
// torch, `ckpt view` run as a real process, and Debian's chromium run headless against it.
#pragma once

#include "scratch.hpp"

#include <ckpt/io.hpp>
#include <ckpt/serve/routes.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fcntl.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace ckpt_ui_test {

namespace fs = std::filesystem;
using nlohmann::json;

inline ckpt::serve::Response get(const ckpt::serve::Router& router, const std::string& path,
                                 std::map<std::string, std::string> query = {}) {
  ckpt::serve::Request q;
  q.method = "GET";
  q.path = path;
  q.query = std::move(query);
  auto r = router.dispatch(q);
  if (!r) throw std::runtime_error("no route answers GET " + path);
  return *r;
}

// GET an API path and parse its JSON, checking the status.
inline json get_json(const ckpt::serve::Router& router, const std::string& path, std::map<std::string, std::string> query,
                     int status) {
  auto r = get(router, path, std::move(query));
  EXPECT_EQ(r.status, status) << path << ": " << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  return json::parse(r.body);
}

inline std::string header(const ckpt::serve::Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

inline ckpt::Tensor f32(ckpt::Shape shape, const std::vector<float>& values) {
  return ckpt::Tensor::from(ckpt::DType::f32, std::move(shape), values);
}

// A small MLP checkpoint as `ckpt train` writes them: spec, state, optimizer, trainer metrics.
inline ckpt::Checkpoint small_checkpoint(int epoch, float shift) {
  ckpt::Checkpoint c;
  c.model_spec.set("type", "sequential");
  c.model_spec.group("layers").group("0").set("type", "linear").set("in", 3).set("out", 4);
  std::vector<float> w(12), b(4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.25f - 1.0f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i);
  w[5] += shift;
  c.model_state.add_tensor("fc1.weight", f32({4, 3}, w));
  c.model_state.add_tensor("fc1.bias", f32({4}, b));
  c.optimizer.set("type", "sgd").set("lr", 0.1).set("step", epoch * 10);
  c.trainer.set("epoch", epoch).set("step", epoch * 10);
  c.trainer.group("metrics")
      .set("epoch", epoch)
      .set("train_loss", 1.0 / (epoch + 1))
      .set("test_loss", 1.2 / (epoch + 1))
      .set("train_accuracy", 0.5 + 0.1 * epoch)
      .set("test_accuracy", 0.45 + 0.1 * epoch);
  return c;
}

// Runs /usr/bin/python3 `script` with `args`; fails the test with its output when it fails.
inline void python(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd = "/usr/bin/python3 '" + script + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  std::string out;
  int rc = ckpt_test::run(cmd, out);
  ASSERT_EQ(rc, 0) << cmd << "\n" << out;
}

inline json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

// `ckpt view ARGS...` as a process of its own, stopped by SIGTERM at the end.
class ViewProcess {
 public:
  explicit ViewProcess(const std::vector<std::string>& args) {
    // Everything the child needs is made before fork: between fork and exec it only calls
    // async-signal-safe functions.
    std::vector<std::string> all = {CKPT_CLI, "view"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
    // The first line names the URL; a process that never prints it (it failed) ends the wait,
    // as does a guard of two minutes against a hang.
    std::string got;
    while (got.find('\n') == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 120000) <= 0) break;
      char buf[256];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    first_output_ = got;
    const std::string prefix = "ckpt view: ";
    auto at = got.find(prefix);
    if (at != std::string::npos) url_ = got.substr(at + prefix.size(), got.find('\n', at) - at - prefix.size());
  }
  ~ViewProcess() { stop(); }
  ViewProcess(const ViewProcess&) = delete;
  ViewProcess& operator=(const ViewProcess&) = delete;

  const std::string& url() const { return url_; }
  const std::string& output() const { return first_output_; }

  // SIGTERM, then its exit status (-1 when it did not exit normally).
  int stop() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    ::close(fd_);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int status_ = -1;
  std::string url_, first_output_;
};

// Debian's chromium, or the empty string.
inline std::string chromium_path() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

struct BrowserRun {
  int status = -1;
  std::string dom;     // what --dump-dom printed (stdout)
  std::string log;     // chromium's stderr, with the page's console messages
};

// Opens `url` in headless chromium, lets the page's scripts and requests run (virtual time),
// and returns the DOM they left. `screenshot` (optional) also saves a PNG of the page.
inline BrowserRun browse(const std::string& url, const fs::path& scratch, const fs::path& screenshot = {}) {
  BrowserRun r;
  const std::string chromium = chromium_path();
  if (chromium.empty()) {
    ADD_FAILURE() << "Debian's chromium is not installed (/usr/bin/chromium): the page's browser tests need it; "
                     "scripts/setup.sh installs it (apt-get install chromium)";
    return r;
  }
  const fs::path profile = scratch / "chromium-profile";
  fs::create_directories(profile);
  const fs::path err = scratch / "chromium.stderr";
  // No network but loopback: every background service of the browser is off.
  std::string cmd = "timeout 120 '" + chromium + "' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage"
                    " --no-first-run --no-default-browser-check --disable-extensions --disable-sync"
                    " --disable-background-networking --disable-component-update --disable-default-apps"
                    " --disable-domain-reliability --no-pings --metrics-recording-only"
                    " --enable-logging=stderr --v=0 --virtual-time-budget=20000"
                    " --user-data-dir='" + profile.string() + "'";
  if (!screenshot.empty()) {
    fs::create_directories(screenshot.parent_path());
    cmd += " --window-size=1280,900 --screenshot='" + screenshot.string() + "'";
  } else {
    cmd += " --dump-dom";
  }
  cmd += " '" + url + "' 2>'" + err.string() + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.dom.append(buf, n);
  int st = ::pclose(pipe);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  r.log = ss.str();
  return r;
}

inline size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace ckpt_ui_test

namespace ckpt_ui_test {

// Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on
// fd 3, answers on fd 4, each a JSON message ending in NUL), for what a test must click.
class DevTools {
 public:
  DevTools(const std::string& url, const fs::path& scratch) {
    const std::string chromium = chromium_path();
    if (chromium.empty()) throw std::runtime_error("Debian's chromium is not installed (/usr/bin/chromium); scripts/setup.sh installs it");
    fs::create_directories(scratch / "chromium-devtools");
    // A browser that died makes a write to its pipe fail with EPIPE, not kill the test program.
    ::signal(SIGPIPE, SIG_IGN);
    const std::string profile = "--user-data-dir=" + (scratch / "chromium-devtools").string();
    std::vector<std::string> args = {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                     "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                                     "--disable-sync", "--disable-background-networking", "--disable-component-update",
                                     "--remote-debugging-pipe", "--window-size=1280,900", profile, "about:blank"};
    std::vector<char*> argv;  // made before fork, as ViewProcess's
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int to[2], from[2];
    if (::pipe(to) != 0 || ::pipe(from) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      // The child's fd 3 reads our commands, fd 4 writes its answers.
      const int in = ::dup(to[0]), out = ::dup(from[1]);
      ::dup2(in, 3);
      ::dup2(out, 4);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      for (int fd = 5; fd < 1024; ++fd) ::close(fd);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(to[0]);
    ::close(from[1]);
    in_ = to[1];
    out_ = from[0];
    try {
      open(url);
    } catch (...) {
      close_browser();  // the destructor does not run for a constructor that throws
      throw;
    }
  }
  ~DevTools() { close_browser(); }
  DevTools(const DevTools&) = delete;
  DevTools& operator=(const DevTools&) = delete;

  // Runs `expression` in the page (awaiting a promise) and returns its value; a thrown
  // exception becomes a runtime_error naming it.
  json evaluate(const std::string& expression) {
    json r = call("Runtime.evaluate", {{"expression", expression}, {"awaitPromise", true}, {"returnByValue", true}}, session_);
    if (r.contains("exceptionDetails")) throw std::runtime_error("page script failed: " + r["exceptionDetails"].dump());
    return r["result"].value("value", json());
  }

 private:
  void open(const std::string& url) {
    json targets = call("Target.getTargets", json::object());
    std::string target;
    for (const auto& t : targets["targetInfos"])
      if (t["type"] == "page") target = t["targetId"];
    if (target.empty()) throw std::runtime_error("chromium opened no page: " + targets.dump());
    session_ = call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})["sessionId"];
    // Scripts run in the page once it has loaded, not in the blank page it replaces.
    call("Page.enable", json::object(), session_);
    call("Page.navigate", {{"url", url}}, session_);
    while (!loaded_) read_into_events();
  }
  void close_browser() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      pid_ = -1;
    }
    if (in_ >= 0) ::close(in_);
    if (out_ >= 0) ::close(out_);
    in_ = out_ = -1;
  }
  json call(const std::string& method, const json& params, const std::string& session = "") {
    json msg{{"id", ++id_}, {"method", method}, {"params", params}};
    if (!session.empty()) msg["sessionId"] = session;
    const std::string text = msg.dump() + '\0';
    if (::write(in_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) throw std::runtime_error("DevTools pipe closed");
    for (;;) {
      json answer = read_message();
      if (answer.value("method", "") == "Page.loadEventFired") loaded_ = true;
      if (answer.value("id", 0) != id_) continue;  // events, and answers to nobody
      if (answer.contains("error")) throw std::runtime_error(method + ": " + answer["error"].dump());
      return answer["result"];
    }
  }
  void read_into_events() {
    if (read_message().value("method", "") == "Page.loadEventFired") loaded_ = true;
  }
  json read_message() {
    for (;;) {
      auto nul = buffer_.find('\0');
      if (nul != std::string::npos) {
        std::string one = buffer_.substr(0, nul);
        buffer_.erase(0, nul + 1);
        return json::parse(one);
      }
      // A guard against a browser that hangs, not a timed assertion.
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 120000) <= 0) throw std::runtime_error("no answer from chromium over DevTools");
      char buf[65536];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("chromium closed the DevTools pipe");
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  int id_ = 0;
  bool loaded_ = false;
  std::string session_, buffer_;
};

}  // namespace ckpt_ui_test
