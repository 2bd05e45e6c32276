// ckpt serve under load: an MLP (784-256-128-10) and the ConvNet, freshly initialised, served
// in-process on a loopback port; N clients (1, 8, 64), each on one keep-alive connection,
// send one-image predict requests for a fixed time. Three servings of the same model are
// measured in interleaved rounds: no batching (--max-batch 1), exact batching and any batching
// (--max-batch 32, --batch-timeout-us 1000). Medians over rounds; ratios against no batching.
//
//   bench_serve [--seconds S] [--rounds R] [--clients 1,8,64] [--models mlp,convnet]
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
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

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
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--seconds") seconds = std::stod(v);
    else if (a == "--rounds") rounds = std::stoi(v);
    else if (a == "--clients") {
      client_counts.clear();
      for (auto& c : split(v)) client_counts.push_back(std::stoi(c));
    } else if (a == "--models") models = split(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const fs::path dir = fs::temp_directory_path() / ("ckpt-bench-serve-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<Serving> servings = {{"none", 1, true}, {"exact", 32, true}, {"any", 32, false}};
  std::printf("model    clients  batching  req/s (median)  p50 ms  p99 ms  req/s vs none  failed\n");
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
    for (int clients : client_counts) {
      std::map<size_t, std::vector<Result>> results;
      for (int r = 0; r < rounds; ++r)
        for (size_t s = 0; s < servings.size(); ++s) results[s].push_back(measure(https[s]->port(), body, clients, seconds));
      double base = 0;
      for (size_t s = 0; s < servings.size(); ++s) {
        std::vector<double> rps, p50, p99;
        uint64_t failed = 0;
        for (const auto& x : results[s]) {
          rps.push_back(x.rps);
          p50.push_back(x.p50_ms);
          p99.push_back(x.p99_ms);
          failed += x.failed;
        }
        const double med = median(rps);
        if (s == 0) base = med;
        std::printf("%-8s %7d  %-8s  %14.0f  %6.2f  %6.2f  %13.2f  %6llu\n", model.c_str(), clients, servings[s].name.c_str(), med,
                    median(p50), median(p99), base > 0 ? med / base : 0.0, static_cast<unsigned long long>(failed));
        std::fflush(stdout);
      }
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
