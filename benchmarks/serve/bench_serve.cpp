// ckpt serve under load: an MLP (784-256-128-10) and the ConvNet, freshly initialised, served
// in-process on a loopback port; N clients (1, 8, 64), each on one keep-alive connection,
// send one-image predict requests for a fixed time. Three servings of the same model are
// measured in interleaved rounds: no batching (--max-batch 1), exact batching and any batching
// (--max-batch 32, --batch-timeout-us 1000). Beside them, as the baseline, ONNX Runtime
// (onnxruntime-node) serves the ONNX export of the same checkpoint (ckpt::convert, what
// `ckpt convert X model.onnx` runs) from ort_server.mjs, a small Node HTTP server answering the
// same predict request, in the same rounds; its predictions are checked against ckpt serve's
// once per model (within 1e-4) before anything is measured. Medians over rounds; ratios against
// no batching and against ONNX Runtime.
//
//   bench_serve [--seconds S] [--rounds R] [--clients 1,8,64] [--models mlp,convnet]
//               [--node PATH] [--ort-server PATH/ort_server.mjs]
#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>
#include <ckpt/serve/http_server.hpp>
#include <ckpt/serve/model_server.hpp>
#include <ckpt/train/manager.hpp>
#include <ckpt/train/model.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

struct Serving {
  std::string name;
  int64_t max_batch;
  bool exact;
};

struct Result {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  uint64_t failed = 0;
};

// One client: a keep-alive connection sending `body` until `until`, recording latencies.
void client(uint16_t port, const std::string& body, Clock::time_point until, std::vector<double>& latencies,
            std::atomic<uint64_t>& failed) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  try {
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    beast::flat_buffer buffer;
    http::request<http::string_body> req(http::verb::post, "/v1/models/m:predict", 11);
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    while (Clock::now() < until) {
      const auto start = Clock::now();
      http::write(stream, req);
      http::response<http::string_body> res;
      http::read(stream, buffer, res);
      if (res.result_int() != 200) ++failed;
      latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  } catch (const std::exception&) {
    ++failed;
  }
}

Result measure(uint16_t port, const std::string& body, int clients, double seconds) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  std::atomic<uint64_t> failed{0};
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] { client(port, body, until, lat[static_cast<size_t>(i)], failed); });
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.failed = failed;
  if (all.empty()) return r;
  r.rps = static_cast<double>(all.size()) / elapsed;
  r.p50_ms = all[all.size() / 2];
  r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

// ort_server.mjs under node, as a child that is killed when this object goes (also on an
// exception) and that exits by itself when this process dies (its stdin closes, and
// PR_SET_PDEATHSIG), so no run leaves a server behind.
class NodeServer {
 public:
  NodeServer(const std::string& node, const fs::path& script, const fs::path& model) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      const std::string s = script.string(), m = model.string();
      ::execlp(node.c_str(), node.c_str(), s.c_str(), m.c_str(), "m", static_cast<char*>(nullptr));
      const char why[] = "bench_serve: cannot run node (--node names the program)\n";
      [[maybe_unused]] const auto n = ::write(2, why, sizeof why - 1);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    // The first line is {"port": P}; loading the model takes well under the bound.
    std::string line;
    const auto until = Clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      pollfd p{stdout_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) fail(script.string() + " printed no port within 30 s");
      char buf[256];
      const ssize_t n = ::read(stdout_, buf, sizeof buf);
      if (n <= 0) fail(script.string() + " exited before printing its port (see its message above)");
      line.append(buf, static_cast<size_t>(n));
      if (line.size() > 4096) fail(script.string() + " printed no port line");
    }
    const auto at = line.find("\"port\":");
    const long port = at == std::string::npos ? 0 : std::strtol(line.c_str() + at + 7, nullptr, 10);
    if (port <= 0 || port > 65535) fail(script.string() + " printed no port: " + line);
    port_ = static_cast<uint16_t>(port);
  }
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;
  ~NodeServer() { stop(); }
  uint16_t port() const { return port_; }

 private:
  [[noreturn]] void fail(const std::string& why) {
    stop();
    throw std::runtime_error(why);
  }
  void stop() {
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
    stdin_ = stdout_ = -1;
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    // Bounded: SIGKILL when it has not gone within 2 s.
    for (int i = 0; i < 200 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  uint16_t port_ = 0;
};

// One predict request's answer body (status 200 required).
std::string predict_once(uint16_t port, const std::string& body) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(http::verb::post, "/v1/models/m:predict", 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  if (res.result_int() != 200)
    throw std::runtime_error("port " + std::to_string(port) + " answered " + std::to_string(res.result_int()) + ": " + res.body());
  return res.body();
}

// Every number in a predictions body, in order (the body is only nested arrays of numbers).
std::vector<double> numbers(const std::string& body) {
  std::vector<double> out;
  for (const char* p = body.c_str(); *p;) {
    if ((*p >= '0' && *p <= '9') || *p == '-') {
      char* end = nullptr;
      out.push_back(std::strtod(p, &end));
      p = end > p ? end : p + 1;
    } else {
      ++p;
    }
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  int rounds = 3;
  std::vector<int> client_counts = {1, 8, 64};
  std::vector<std::string> models = {"mlp", "convnet"};
  std::string node = "node";
  fs::path ort_script = fs::path(CKPT_SOURCE_DIR) / "benchmarks" / "serve" / "ort_server.mjs";
  if (argc % 2 == 0) {
    std::fprintf(stderr, "every option takes a value: %s\n", argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) try {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--seconds") seconds = std::stod(v);
    else if (a == "--rounds") rounds = std::stoi(v);
    else if (a == "--clients") {
      client_counts.clear();
      for (auto& c : split(v)) client_counts.push_back(std::stoi(c));
    } else if (a == "--models") models = split(v);
    else if (a == "--node") node = v;
    else if (a == "--ort-server") ort_script = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  } catch (const std::logic_error&) {  // std::stod / std::stoi: not a number, or out of range
    std::fprintf(stderr, "%s takes a number (a list of numbers for --clients), got %s\n", argv[i], argv[i + 1]);
    return 2;
  }
  // Bounded in count and time.
  const bool clients_ok = !client_counts.empty() && std::all_of(client_counts.begin(), client_counts.end(),
                                                                [](int c) { return c >= 1 && c <= 256; });
  if (!(seconds > 0 && seconds <= 60) || rounds < 1 || rounds > 50 || !clients_ok) {
    std::fprintf(stderr, "--seconds must be in (0, 60], --rounds 1..50, --clients each 1..256\n");
    return 2;
  }
  for (const auto& model : models)
    if (model != "mlp" && model != "convnet") {
      std::fprintf(stderr, "unknown model %s (mlp, convnet)\n", model.c_str());
      return 2;
    }
  const fs::path dir = fs::temp_directory_path() / ("ckpt-bench-serve-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  try {
    const std::vector<Serving> servings = {{"none", 1, true}, {"exact", 32, true}, {"any", 32, false}};
    std::printf("model    clients  serving   req/s (median)  p50 ms  p99 ms  req/s vs none  vs ort  failed\n");
    for (const auto& model : models) {
      auto m = ckpt::train::Model::from_spec(model == "mlp" ? ckpt::train::Model::mlp_spec(784, {256, 128}, 10)
                                                            : ckpt::train::Model::convnet_spec(), 1);
      ckpt::Checkpoint c;
      c.model_spec = m->spec();
      c.model_state = ckpt::train::clone_tensors(m->state_dict());
      const fs::path file = dir / (model + ".msgpack");
      ckpt::SaveOptions so;
      so.fsync = false;
      ckpt::save(c, file, so);
      const fs::path onnx = dir / (model + ".onnx");
      ckpt::convert(file, onnx);
      NodeServer ort(node, ort_script, onnx);
      // One image of arbitrary values in the model's input shape.
      std::string body = "{\"instances\": [";
      std::mt19937 rng(7);
      std::uniform_real_distribution<float> u(0, 1);
      const bool conv = model == "convnet";
      body += conv ? "[[[" : "[";
      for (int i = 0; i < 784; ++i) {
        if (conv && i && i % 28 == 0) body += "],[";
        else if (i) body += ",";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(u(rng)));
        body += buf;
      }
      body += conv ? "]]]]}" : "]]}";

      // Every serving up at once; rounds visit them in turn so drift hits all alike.
      std::vector<std::unique_ptr<ckpt::serve::ModelServer>> servers;
      std::vector<std::unique_ptr<ckpt::serve::HttpServer>> https;
      for (const auto& s : servings) {
        ckpt::serve::ServeOptions o;
        o.max_batch = s.max_batch;
        o.exact_batching = s.exact;
        o.batch_timeout = std::chrono::microseconds(s.max_batch == 1 ? 0 : 1000);
        o.poll_interval = std::chrono::milliseconds(0);
        servers.push_back(std::make_unique<ckpt::serve::ModelServer>(std::vector<ckpt::serve::ModelArgument>{{"m", file.string()}}, o));
        auto router = std::make_shared<ckpt::serve::Router>();
        servers.back()->add_routes(*router);
        ckpt::serve::ServerOptions hs;
        hs.port = 0;
        hs.handler_threads = 80;  // every client's request can wait for its batch at once
        https.push_back(std::make_unique<ckpt::serve::HttpServer>(router, hs));
      }
      // The comparison is of the same computation: ONNX Runtime's answer is ckpt serve's.
      const auto ours = numbers(predict_once(https[0]->port(), body));
      const auto theirs = numbers(predict_once(ort.port(), body));
      if (ours.size() != 10 || theirs.size() != ours.size())
        throw std::runtime_error(model + ": ckpt serve gave " + std::to_string(ours.size()) + " numbers, ONNX Runtime " +
                                 std::to_string(theirs.size()) + "; expected 10 logits each");
      double diff = 0;
      for (size_t i = 0; i < ours.size(); ++i) diff = std::max(diff, std::fabs(ours[i] - theirs[i]));
      std::printf("%s: max |ckpt serve - ONNX Runtime| over %zu logits = %.3g\n", model.c_str(), ours.size(), diff);
      if (!(diff <= 1e-4)) throw std::runtime_error(model + ": predictions differ by more than 1e-4");
      std::vector<uint16_t> ports;
      for (const auto& h : https) ports.push_back(h->port());
      ports.push_back(ort.port());
      for (int clients : client_counts) {
        std::map<size_t, std::vector<Result>> results;
        for (int r = 0; r < rounds; ++r)
          for (size_t s = 0; s < ports.size(); ++s) results[s].push_back(measure(ports[s], body, clients, seconds));
        std::vector<double> meds(ports.size());
        std::vector<Result> rows(ports.size());
        for (size_t s = 0; s < ports.size(); ++s) {
          std::vector<double> rps, p50, p99;
          uint64_t failed = 0;
          for (const auto& x : results[s]) {
            rps.push_back(x.rps);
            p50.push_back(x.p50_ms);
            p99.push_back(x.p99_ms);
            failed += x.failed;
          }
          meds[s] = median(rps);
          rows[s] = {meds[s], median(p50), median(p99), failed};
        }
        const double base = meds[0], ort_rps = meds.back();
        for (size_t s = 0; s < ports.size(); ++s) {
          const std::string name = s < servings.size() ? servings[s].name : "ort";
          std::printf("%-8s %7d  %-8s  %14.0f  %6.2f  %6.2f  %13.2f  %6.2f  %6llu\n", model.c_str(), clients, name.c_str(),
                      rows[s].rps, rows[s].p50_ms, rows[s].p99_ms, base > 0 ? rows[s].rps / base : 0.0,
                      ort_rps > 0 ? rows[s].rps / ort_rps : 0.0, static_cast<unsigned long long>(rows[s].failed));
        }
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve: %s\n", e.what());
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 1;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
