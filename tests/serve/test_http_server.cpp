// The HTTP server on its own, with routes of the test's: decoding, keep-alive, 100-continue,
// errors as JSON, a handler that throws, and one connection never holding up another.
#include "serve_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/serve/http_server.hpp>

#include <future>
#include <thread>

namespace ckpt_test {
namespace {

using namespace ckpt::serve;

TEST(PercentDecode, DecodesAndRefusesMalformedEscapes) {
  EXPECT_EQ(percent_decode("/a%20b%2Fc"), "/a b/c");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("%e2%82%AC"), "\xe2\x82\xac");
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("%4"));
  EXPECT_FALSE(percent_decode("%zz"));
  EXPECT_FALSE(percent_decode("a%00b"));
}

class Server : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<Router>();
    router->add("GET", "/echo/", [](const Request& r) {
      Response res;
      nlohmann::json q = nlohmann::json::object();
      for (const auto& [k, v] : r.query) q[k] = v;
      res.body = nlohmann::json{{"path", r.path}, {"query", q}, {"method", r.method}}.dump();
      return res;
    });
    router->add("POST", "/echo/", [](const Request& r) {
      Response res;
      res.content_type = "text/plain";
      res.body = r.content_type + "|" + r.body;
      return res;
    });
    router->add("GET", "/throw", [](const Request&) -> Response { throw std::runtime_error("handler failed"); });
    router->add("GET", "/throw-int", [](const Request&) -> Response { throw 7; });
    router->add("GET", "/wait", [this](const Request&) {
      waiting_.set_value();
      release_.get_future().wait();
      return Response{200, "text/plain", "released", {}};
    });
    router->add("GET", "/header", [](const Request&) { return Response{201, "text/plain", "", {{"X-Ckpt", "yes"}}}; });
    ServerOptions o;
    o.port = 0;
    o.threads = 1;  // one network thread: a waiting handler must still not hold up others
    server_ = std::make_unique<HttpServer>(router, o);
  }
  void TearDown() override { server_.reset(); }
  uint16_t port() const { return server_->port(); }

  std::promise<void> waiting_, release_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(Server, DecodesTargetsAndQueries) {
  auto r = http_request(port(), "GET", "/echo/a%20b/%C3%A9?x=1&y=%2F+z&flag&=v");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["path"], "/echo/a b/\xc3\xa9");
  EXPECT_EQ(j["query"]["x"], "1");
  EXPECT_EQ(j["query"]["y"], "/ z");
  EXPECT_EQ(j["query"]["flag"], "");
  EXPECT_EQ(j["method"], "GET");
  r = http_request(port(), "POST", "/echo/x", "payload");
  EXPECT_EQ(r.body, "application/json|payload");
  EXPECT_EQ(r.content_type, "text/plain");
}

TEST_F(Server, AnswersErrorsAsJsonAndSurvivesThrowingHandlers) {
  auto r = http_request(port(), "GET", "/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"], "no such resource: /nothing");
  r = http_request(port(), "DELETE", "/echo/x");
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(r.json().contains("error"));
  r = http_request(port(), "GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.json()["error"], "internal error: handler failed");
  r = http_request(port(), "GET", "/throw-int");
  EXPECT_EQ(r.status, 500);
  r = http_request(port(), "GET", "/header");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(http_request(port(), "GET", "/echo/still").status, 200);
}

TEST_F(Server, KeepsConnectionsAliveAndAnswers100Continue) {
  HttpClient c(port());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.request("GET", "/echo/" + std::to_string(i)).status, 200);
  // curl's way with bodies over 1 KiB: the header first, the body after "100 Continue".
  c.send_raw("POST /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  HttpReply interim = c.read_reply();
  EXPECT_EQ(interim.status, 100);
  c.send_raw("body");
  HttpReply r = c.read_reply();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "text/plain|body");
  EXPECT_EQ(c.request("GET", "/echo/after").status, 200);
}

TEST_F(Server, AWaitingHandlerDoesNotHoldUpOtherConnections) {
  auto slow = std::async(std::launch::async, [&] { return http_request(port(), "GET", "/wait"); });
  waiting_.get_future().wait();  // the handler is running and will not return until released
  for (int i = 0; i < 10; ++i) EXPECT_EQ(http_request(port(), "GET", "/echo/meanwhile").status, 200);
  release_.set_value();
  EXPECT_EQ(slow.get().body, "released");
}

// Beast's header limit does not cover chunked trailers or chunk extensions: without a bound on
// the read buffer they grew the server until memory ran out. Both stop at the buffer's limit
// (header limit + 64 KiB) with 431; 200 KiB is sent, well past it, and never finished.
TEST_F(Server, ChunkedTrailersAndExtensionsAreBounded) {
  const std::string head = "POST /echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string trailers;
  while (trailers.size() < (200u << 10)) trailers += "X-T: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  for (const std::string& raw : {head + "1\r\nx\r\n0\r\n" + trailers, head + "1;" + std::string(200u << 10, 'e')}) {
    HttpClient c(port());
    try {
      c.send_raw(raw);
    } catch (const std::exception&) {
      // The server may answer and close before all of it is written; the answer is still read.
    }
    HttpReply r = c.read_reply();
    EXPECT_EQ(r.status, 431) << r.body;
    EXPECT_TRUE(r.json().contains("error"));
  }
  EXPECT_EQ(http_request(port(), "GET", "/echo/after").status, 200);
}

// DNS rebinding: a page of another origin whose name now resolves to 127.0.0.1 sends its own
// name as Host; a server bound to loopback answers only its own names.
TEST_F(Server, BoundToLoopbackItAnswersOnlyLoopbackHosts) {
  auto get = [&](const std::string& host) {
    HttpClient c(port());
    c.send_raw("GET /echo/x HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    return c.read_reply();
  };
  for (const std::string& host : std::vector<std::string>{"127.0.0.1", "127.0.0.1:" + std::to_string(port()), "localhost", "LocalHost:8501", "[::1]",
                                 "[::1]:8501"})
    EXPECT_EQ(get(host).status, 200) << host;
  for (const std::string& host : std::vector<std::string>{"evil.example", "evil.example:8501", "localhost.evil.example", "127.0.0.1.nip.io:80",
                                 "localhost:80x", "localhost:", "[::1", "[::2]:80", "0.0.0.0"}) {
    HttpReply r = get(host);
    EXPECT_EQ(r.status, 403) << host;
    EXPECT_TRUE(r.json().contains("error")) << r.body;
  }
  // HTTP/1.0 without a Host header.
  HttpClient c(port());
  c.send_raw("GET /echo/x HTTP/1.0\r\n\r\n");
  EXPECT_EQ(c.read_reply().status, 200);
}

// Stopping (SIGTERM) lets a request whose handler is running finish and get its answer; new
// connections are refused meanwhile.
TEST_F(Server, StopAnswersRequestsInFlight) {
  const uint16_t p = port();
  auto slow = std::async(std::launch::async, [&] { return http_request(p, "GET", "/wait"); });
  waiting_.get_future().wait();
  auto stopping = std::async(std::launch::async, [&] { server_->stop(); });
  // Once the acceptor is closed the stop has begun (bounded: 30 s of tries).
  bool refused = false;
  for (int i = 0; i < 3000 && !refused; ++i) {
    try {
      HttpClient c(p, std::chrono::seconds(1));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } catch (const std::exception&) {
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  release_.set_value();
  HttpReply r = slow.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "released");
  stopping.get();
}

// Whether the port refuses new connections after stop() depends on no other process taking it
// meanwhile; a connection opened before the stop is what this server alone decides about.
TEST_F(Server, StopIsIdempotentAndClosesConnections) {
  const uint16_t p = port();
  EXPECT_GT(p, 0);
  HttpClient idle(p);
  EXPECT_EQ(idle.request("GET", "/echo/before").status, 200);  // kept alive, then idle
  server_->stop();
  server_->stop();
  EXPECT_TRUE(idle.closed_by_server());
}

TEST(ServerOptions, BodiesShareOneBudget) {
  auto router = std::make_shared<Router>();
  router->add("POST", "/echo", [](const Request& r) { return Response{200, "text/plain", std::to_string(r.body.size()), {}}; });
  ServerOptions o;
  o.port = 0;
  o.max_total_body_bytes = 1000;
  HttpServer server(router, o);
  // The first request's 600 bytes are reserved while it arrives; a second one does not fit.
  HttpClient first(server.port());
  first.send_raw("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 600\r\n\r\n" + std::string(100, 'a'));
  // Until the server has read the first header, a second request may still fit (bounded: 100 tries).
  int status = 0;
  for (int i = 0; i < 100 && status != 503; ++i) {
    HttpClient c(server.port());
    status = c.request("POST", "/echo", std::string(600, 'b')).status;
    if (status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 503);
  first.send_raw(std::string(500, 'a'));
  HttpReply r = first.read_reply();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "600");
  // Released: the next one fits again.
  EXPECT_EQ(http_request(server.port(), "POST", "/echo", std::string(600, 'c')).body, "600");
}

TEST(ServerOptions, BadAddressesAreUsageErrors) {
  auto router = std::make_shared<Router>();
  ServerOptions o;
  o.bind = "not-an-address";
  o.port = 0;
  EXPECT_THROW(HttpServer(router, o), ckpt::UsageError);
  // A port already taken.
  ServerOptions first;
  first.port = 0;
  HttpServer a(router, first);
  ServerOptions second;
  second.port = a.port();
  EXPECT_THROW(HttpServer(router, second), ckpt::IoError);
}

}  // namespace
}  // namespace ckpt_test
