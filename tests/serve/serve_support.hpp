// What the serve tests share: a small model trained once by the real `ckpt train` (an MLP on
// 512 Fashion-MNIST images, two epochs, a checkpoint per epoch), an HTTP client on Boost.Beast
// with a deadline on every operation (loopback only), and raw sockets for malformed requests.
#pragma once

#include "scratch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace ckpt_test {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

inline constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

// Two checkpoints of one run: after epoch 1 (step 8) and epoch 2 (step 16), msgpack, with hashes.
struct TrainedRun {
  fs::path epoch1, epoch2;
};

// Trained once per test program, in a folder removed at exit.
inline const TrainedRun& trained_run() {
  static TempDir dir("serve-train");
  static TrainedRun run = [] {
    {
      std::ofstream cfg(dir / "mlp.json");
      cfg << R"({"model": {"type": "mlp", "hidden": [16]}, "optimizer": {"type": "sgd", "lr": 0.05},
        "epochs": 2, "batch_size": 64, "seed": 3, "threads": 1, "data": {"train_limit": 512, "test_limit": 128},
        "checkpoint": {"backend": "msgpack", "dir": "ck", "resume": "none", "keep_last": 0}})";
    }
    std::string out;
    const int rc = ckpt_test::run("cd " + dir.path.string() + " && " + CKPT_CLI + " train mlp.json", out);
    if (rc != 0) throw std::runtime_error("ckpt train failed: " + out);
    TrainedRun r{dir / "ck" / "step-000000008.msgpack", dir / "ck" / "step-000000016.msgpack"};
    if (!fs::exists(r.epoch1) || !fs::exists(r.epoch2)) throw std::runtime_error("ckpt train wrote other files: " + out);
    return r;
  }();
  return run;
}

// A ConvNet checkpoint (one epoch on 128 images): its input is [1, 28, 28] per image.
inline const fs::path& trained_convnet() {
  static TempDir dir("serve-train-conv");
  static fs::path file = [] {
    {
      std::ofstream cfg(dir / "conv.json");
      cfg << R"({"model": {"type": "convnet"}, "optimizer": {"type": "sgd", "lr": 0.05},
        "epochs": 1, "batch_size": 64, "seed": 3, "threads": 1, "data": {"train_limit": 128, "test_limit": 64},
        "checkpoint": {"backend": "msgpack", "dir": "ck", "resume": "none", "keep_last": 0}})";
    }
    std::string out;
    if (ckpt_test::run("cd " + dir.path.string() + " && " + CKPT_CLI + " train conv.json", out) != 0)
      throw std::runtime_error("ckpt train failed: " + out);
    return dir / "ck" / "step-000000002.msgpack";
  }();
  return file;
}

// `ckpt predict FILE --images N`, each line's floats.
inline std::vector<std::vector<float>> ckpt_predict(const fs::path& file, int images) {
  std::string out;
  if (ckpt_test::run(std::string(CKPT_CLI) + " predict " + file.string() + " --images " + std::to_string(images), out) != 0)
    throw std::runtime_error("ckpt predict failed: " + out);
  std::vector<std::vector<float>> rows;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::vector<float> row;
    const char* p = line.c_str();
    char* end = nullptr;
    for (float v = std::strtof(p, &end); end != p; v = std::strtof(p, &end)) {
      row.push_back(v);
      p = end;
    }
    rows.push_back(row);
  }
  return rows;
}

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

// One keep-alive connection; every operation has a deadline, so a test cannot hang on it.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, std::chrono::seconds deadline = std::chrono::seconds(30))
      : stream_(ioc_), deadline_(deadline) {
    stream_.expires_after(deadline_);
    beast::error_code ec;
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [&](beast::error_code e) { ec = e; });
    run();
    if (ec) throw std::runtime_error("connect: " + ec.message());
  }

  // Throws std::runtime_error when the connection fails or the deadline passes.
  HttpReply request(const std::string& method, const std::string& target, const std::string& body = "",
                    const std::string& content_type = "application/json") {
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    beast::error_code ec;
    stream_.expires_after(deadline_);
    http::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) throw std::runtime_error("write: " + ec.message());
    return read_reply();
  }

  // Bytes as they are, for requests no client library would send.
  void send_raw(const std::string& bytes) {
    beast::error_code ec;
    stream_.expires_after(deadline_);
    net::async_write(stream_, net::buffer(bytes), [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) throw std::runtime_error("write: " + ec.message());
  }

  HttpReply read_reply() {
    http::response<http::string_body> res;
    beast::error_code ec;
    stream_.expires_after(deadline_);
    http::async_read(stream_, buffer_, res, [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) throw std::runtime_error("read: " + ec.message());
    return {static_cast<int>(res.result_int()), res.body(), std::string(res[http::field::content_type])};
  }

  // True when the server closed the connection (end of stream or reset) before the deadline.
  bool closed_by_server() {
    beast::error_code ec;
    char byte;
    stream_.expires_after(deadline_);
    net::async_read(stream_, net::buffer(&byte, 1), [&](beast::error_code e, size_t) { ec = e; });
    run();
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::chrono::seconds deadline_;
};

inline HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                              const std::string& body = "") {
  HttpClient c(port);
  return c.request(method, target, body);
}

// Rows of floats as a JSON array of arrays, each float written so it reads back exactly.
inline std::string json_rows(const std::vector<float>& values, size_t per_row, size_t rows) {
  std::string s = "[";
  char buf[32];
  for (size_t r = 0; r < rows; ++r) {
    s += r ? ",[" : "[";
    for (size_t i = 0; i < per_row; ++i) {
      std::snprintf(buf, sizeof buf, i ? ",%.9g" : "%.9g", static_cast<double>(values[r * per_row + i]));
      s += buf;
    }
    s += "]";
  }
  return s + "]";
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace ckpt_test
