// The real `ckpt serve` binary: started on an ephemeral port, it prints its URL, answers with
// the same numbers as `ckpt predict`, serves a training folder's newest checkpoint, and stops
// cleanly on SIGTERM and SIGINT.
#include "serve_support.hpp"

#include <ckpt/serve/http_server.hpp>
#include <ckpt/train/data.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>

namespace ckpt_test {
namespace {

// `ckpt serve ARGS...` with stdout and stderr read through a pipe.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    args.insert(args.begin(), {CKPT_CLI, "serve"});
    // Built before fork: the child of a threaded process may only make async-signal-safe calls
    // (an allocation there can deadlock on a lock another thread held at the fork).
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }

  // Reads output until `pattern` matches it or the deadline passes; the first match's group 1.
  std::string wait_for(const std::regex& pattern, std::chrono::seconds deadline = std::chrono::seconds(60)) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    std::smatch m;
    while (!std::regex_search(output_, m, pattern)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
      if (left <= 0) throw std::runtime_error("timed out; output so far: " + output_);
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("ckpt serve ended; output: " + output_);
      output_.append(buf, static_cast<size_t>(n));
    }
    return m.size() > 1 ? m[1].str() : m[0].str();
  }

  // Sends `sig` and returns the exit status (bounded wait), -1 when it did not exit normally.
  int stop(int sig) {
    ::kill(pid_, sig);
    for (int i = 0; i < 600; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        char buf[4096];
        for (ssize_t n; (n = ::read(out_, buf, sizeof buf)) > 0;) output_.append(buf, static_cast<size_t>(n));
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -2;
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string output_;
};

const std::regex kListening(R"(listening on http://127\.0\.0\.1:(\d+)/)");

TEST(ServeCli, ServesPredictionsEqualToCkptPredictAndStopsOnSigterm) {
  ServeProcess p({"--port", "0", "mlp=" + trained_run().epoch2.string(), "first=" + trained_run().epoch1.string()});
  const auto port = static_cast<uint16_t>(std::stoi(p.wait_for(kListening)));
  EXPECT_NE(p.output().find("serving mlp version 1 from " + trained_run().epoch2.string()), std::string::npos) << p.output();
  auto ds = ckpt::train::load_fashion_mnist(kFashionMnist, "test", 5);
  for (const auto& [name, file] : {std::pair{"mlp", trained_run().epoch2}, std::pair{"first", trained_run().epoch1}}) {
    auto r = http_request(port, "POST", std::string("/v1/models/") + name + ":predict", R"({"instances": )" + json_rows(ds.images, 784, 5) + "}");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto expected = ckpt_predict(file, 5);
    auto rows = r.json()["predictions"];
    ASSERT_EQ(rows.size(), 5u);
    for (size_t i = 0; i < 5; ++i)
      for (size_t k = 0; k < 10; ++k) EXPECT_EQ(bits(rows[i][k].get<float>()), bits(expected[i][k])) << name << " " << i << " " << k;
  }
  EXPECT_EQ(p.stop(SIGTERM), 0) << p.output();
  EXPECT_NE(p.output().find("stopping (SIGTERM)"), std::string::npos) << p.output();
}

TEST(ServeCli, FollowsATrainingFolderAndStopsOnSigint) {
  TempDir dir("serve-cli-folder");
  fs::copy_file(trained_run().epoch1, dir / "step-000000008.msgpack");
  ServeProcess p({"--port", "0", "--poll-ms", "50", "--max-batch", "4", "--batch-timeout-us", "0", "run=" + dir.path.string()});
  const auto port = static_cast<uint16_t>(std::stoi(p.wait_for(kListening)));
  auto version = [&] { return http_request(port, "GET", "/v1/models/run").json()["model_version_status"][0]["version"].get<std::string>(); };
  EXPECT_EQ(version(), "8");
  fs::copy_file(trained_run().epoch2, dir / ".step.tmp");
  fs::rename(dir / ".step.tmp", dir / "step-000000016.msgpack");
  p.wait_for(std::regex("now serving version 16"));
  EXPECT_EQ(version(), "16");
  EXPECT_EQ(p.stop(SIGINT), 0) << p.output();
}

TEST(ServeCli, UiServesThePageBesideTheApi) {
  ServeProcess p({"--port", "0", "--ui", "mlp=" + trained_run().epoch2.string()});
  const auto port = static_cast<uint16_t>(std::stoi(p.wait_for(kListening)));
  EXPECT_NE(p.output().find("the page at /"), std::string::npos) << p.output();
  auto page = http_request(port, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.content_type.find("text/html"), std::string::npos) << page.content_type;
  // The API's routes come first, so the page's catch-all takes none of them.
  EXPECT_EQ(http_request(port, "GET", "/v1/models/mlp").status, 200);
  EXPECT_EQ(http_request(port, "GET", "/v1/models/nope").status, 404);
  EXPECT_EQ(http_request(port, "GET", "/metrics").status, 200);
  EXPECT_EQ(p.stop(SIGTERM), 0) << p.output();
}

TEST(ServeCli, RefusesBadArgumentsWithUsageErrors) {
  std::string out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " serve nameless", out), 2) << out;
  EXPECT_NE(out.find("expected NAME=PATH"), std::string::npos) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " serve 'bad name=/x'", out), 2) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " serve m=/no/such/file --port 0", out), 2) << out;
  EXPECT_NE(out.find("model 'm' (/no/such/file)"), std::string::npos) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " serve a=" + trained_run().epoch1.string() + " a=" + trained_run().epoch2.string(), out), 2) << out;
  EXPECT_NE(out.find("given twice"), std::string::npos) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " serve --bind nowhere m=" + trained_run().epoch1.string(), out), 2) << out;
  EXPECT_NE(out.find("not an IP address"), std::string::npos) << out;
}

// An address beyond loopback is warned about before it is bound (192.0.2.1, TEST-NET-1, is on
// no interface here, so nothing listens beyond loopback in this test); loopback is not.
TEST(ServeCli, WarnsWhenBoundBeyondLoopback) {
  std::string out;
  EXPECT_NE(run(std::string(CKPT_CLI) + " serve --ui --bind 192.0.2.1 --port 0 m=" + trained_run().epoch1.string(), out), 0) << out;
  EXPECT_NE(out.find("ckpt serve: warning: listening on 192.0.2.1"), std::string::npos) << out;
  EXPECT_NE(out.find("every tensor"), std::string::npos) << out;
  // Loopback (on a port taken here, so it exits at once): no warning.
  ckpt::serve::ServerOptions taken;
  taken.port = 0;
  ckpt::serve::HttpServer holder(std::make_shared<ckpt::serve::Router>(), taken);
  EXPECT_NE(run(std::string(CKPT_CLI) + " serve --bind 127.0.0.1 --port " + std::to_string(holder.port()) + " m=" +
                    trained_run().epoch1.string(), out), 0) << out;
  EXPECT_NE(out.find("cannot bind"), std::string::npos) << out;
  EXPECT_EQ(out.find("warning"), std::string::npos) << out;
}

}  // namespace
}  // namespace ckpt_test
