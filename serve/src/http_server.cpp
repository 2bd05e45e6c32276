#include <ckpt/errors.hpp>
#include <ckpt/serve/http_server.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <functional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace ckpt::serve {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return std::nullopt;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out.push_back(c);
  }
  return out;
}

namespace {

// What every connection shares; outlives them (sessions hold a shared_ptr).
struct Shared {
  std::shared_ptr<const Router> router;
  ServerOptions options;
  net::thread_pool* handlers = nullptr;
  std::atomic<size_t> connections{0};
  std::atomic<size_t> queued{0};
  // Body bytes that requests being read or answered may hold, all together.
  std::atomic<size_t> body_bytes{0};

  // Bound to a loopback address: requests must name it in their Host header (see host_allowed).
  bool loopback = false;
  // Requests handed to a handler and not yet answered (or their connection gone); stop() waits
  // for them with the network threads still running, so their answers are written.
  std::atomic<bool> stopping{false};
  std::mutex flight_mu;
  std::condition_variable flight_cv;
  size_t in_flight = 0;
  void begin_request() {
    std::lock_guard lock(flight_mu);
    ++in_flight;
  }
  void end_request() {
    std::lock_guard lock(flight_mu);
    if (--in_flight == 0) flight_cv.notify_all();
  }

  // How to close each open connection at stop (from its own strand).
  std::mutex sessions_mu;
  std::unordered_map<const void*, std::function<void()>> closers;

  // Reserves `n` bytes of the body budget; false when it is spent.
  bool reserve(size_t n) {
    size_t now = body_bytes.load();
    do {
      if (now + n > options.max_total_body_bytes) return false;
    } while (!body_bytes.compare_exchange_weak(now, now + n));
    return true;
  }
};

// The read buffer holds what the parser has not consumed yet: the header, a chunk-size line with
// its extensions, the trailers (body bytes move into the body as they arrive). Beast limits only
// the header, so this bound is what keeps the others from growing without end; the slack above
// the header limit lets header_limit (431 with its own message) trip first for headers, and lets
// body bytes be read in large pieces.
size_t read_buffer_limit(const ServerOptions& o) { return o.max_header_bytes + (size_t{64} << 10); }

// Whether a request to a server bound to loopback may be answered: its Host names loopback
// (127.0.0.1, localhost, [::1], with or without a port), or it has none (HTTP/1.0). A web page
// of another origin whose name is rebound to 127.0.0.1 (DNS rebinding) sends its own name, and
// without this check could read everything the server answers.
bool host_allowed(std::string_view host) {
  if (host.empty()) return true;
  std::string_view name = host, port;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(0, close + 1);
    port = host.substr(close + 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon);
  }
  if (!port.empty()) {
    if (port.size() < 2 || port.size() > 6 || port.front() != ':') return false;
    for (char c : port.substr(1))
      if (c < '0' || c > '9') return false;
  }
  auto is = [&](std::string_view want) {
    return name.size() == want.size() &&
           std::equal(name.begin(), name.end(), want.begin(), [](char a, char b) { return (a | 0x20) == (b | 0x20); });
  };
  return is("127.0.0.1") || is("localhost") || is("[::1]");
}

http::status to_status(int code) { return static_cast<http::status>(code); }

Response answer(const Shared& shared, const Request& request) {
  try {
    if (auto r = shared.router->dispatch(request)) return *r;
    if (shared.router->has_path(request.path))
      return json_error(405, "method " + request.method + " is not allowed for " + request.path);
    return json_error(404, "no such resource: " + request.path);
  } catch (const std::exception& e) {
    return json_error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return json_error(500, "internal error");
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)), buffer_(read_buffer_limit(shared_->options)) {
    ++shared_->connections;
  }
  ~Session() {
    {
      std::lock_guard lock(shared_->sessions_mu);
      shared_->closers.erase(this);
    }
    if (in_flight_) shared_->end_request();
    release();
    --shared_->connections;
  }

  void start() {
    {
      std::lock_guard lock(shared_->sessions_mu);
      shared_->closers[this] = [weak = weak_from_this()] {
        if (auto self = weak.lock()) net::post(self->stream_.get_executor(), [self] { self->close(); });
      };
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(shared_->options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(shared_->options.max_body_bytes);
    // One deadline for the whole request (header and body): a client that trickles bytes is
    // cut off when it passes, however often it sends.
    stream_.expires_after(shared_->options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return read_failed(ec);
    const auto& req = parser_->get();
    if (shared_->loopback) {
      const auto host = req[http::field::host];
      if (!host_allowed(std::string_view(host.data(), host.size())))
        return send_error(403, "Host '" + std::string(host.substr(0, 256)) +
                                   "' is not this server's: bound to loopback, it answers only requests to 127.0.0.1, "
                                   "localhost or [::1]");
    }
    if (auto length = parser_->content_length(); length && *length > shared_->options.max_body_bytes)
      return send_error(413, "request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                                 std::to_string(shared_->options.max_body_bytes) + " bytes");
    // The body's bytes come out of a budget shared by all connections (a body without a length,
    // chunked, may use the whole limit).
    const size_t need = parser_->content_length().value_or(shared_->options.max_body_bytes);
    if (need > 0) {
      if (!shared_->reserve(need)) return send_error(503, "the server holds too many request bodies; try again");
      reserved_ = need;
    }
    auto expect = req[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      // curl sends this for bodies over 1 KiB and waits a second for it otherwise.
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code e, size_t) {
        if (e) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void read_failed(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted)
      return close();
    // Beast has closed the socket on a timeout already: a slow client gets no answer.
    if (ec == beast::error::timeout) return close();
    if (ec == http::error::body_limit)
      return send_error(413, "request body exceeds the limit of " + std::to_string(shared_->options.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return send_error(431, "request header exceeds the limit of " + std::to_string(shared_->options.max_header_bytes) + " bytes");
    // Beast applies header_limit to the header only: chunked trailers and chunk extensions are
    // held whole in the read buffer until parsed, and only its limit stops them.
    if (ec == http::error::buffer_overflow)
      return send_error(431, "chunked trailers or a chunk extension exceed the limit of " +
                                 std::to_string(read_buffer_limit(shared_->options)) + " bytes");
    if (ec == http::error::partial_message) return close();  // the client went away mid-request
    send_error(400, "malformed HTTP request: " + ec.message());
  }

  void on_read(beast::error_code ec) {
    if (ec) return read_failed(ec);
    auto& req = parser_->get();
    Request request;
    request.method = std::string(req.method_string());
    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    auto path = percent_decode(target.substr(0, q));
    if (!path || path->empty() || path->front() != '/') return send_error(400, "malformed request target");
    request.path = std::move(*path);
    if (q != std::string_view::npos) {
      std::string_view rest = target.substr(q + 1);
      while (!rest.empty()) {
        const size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.empty()) continue;
        const size_t eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq), true);
        auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
        if (!key || !value) return send_error(400, "malformed query string");
        request.query.emplace(std::move(*key), std::move(*value));
      }
    }
    request.content_type = std::string(req[http::field::content_type]);
    request.host = std::string(req[http::field::host]);
    request.body = std::move(req.body());
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    if (shared_->queued.fetch_add(1) >= shared_->options.max_queued) {
      --shared_->queued;
      refused(503);
      return send(json_error(503, "the server is busy; try again"), false);
    }
    in_flight_ = true;
    shared_->begin_request();
    // The handler may wait (for its batch); it runs off the network threads.
    net::post(*shared_->handlers, [self = shared_from_this(), request = std::move(request)]() mutable {
      --self->shared_->queued;
      Response r = answer(*self->shared_, request);
      std::string().swap(request.body);  // freed before send() gives its bytes back to the budget
      net::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->send(std::move(r), self->keep_alive_); });
    });
  }

  void send_error(int status, const std::string& message) {
    refused(status);
    version_ = parser_ ? parser_->get().version() : 11;
    if (version_ != 10 && version_ != 11) version_ = 11;
    send(json_error(status, message), false);
  }

  void send(Response r, bool keep_alive) {
    res_.emplace(to_status(r.status), version_);
    res_->set(http::field::server, "ckpt");
    res_->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res_->set(k, v);
    res_->body() = std::move(r.body);
    res_->keep_alive(keep_alive && !shared_->stopping);
    res_->prepare_payload();
    // The request's body is gone by now. Given back before the answer is written, so a client that
    // has read its answer finds the budget free for its next request.
    release();
    stream_.expires_after(shared_->options.write_timeout);
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (std::exchange(self->in_flight_, false)) self->shared_->end_request();
      if (ec || !self->res_->keep_alive()) return self->close();
      self->res_.reset();
      self->read_request();
    });
  }

  void refused(int status) {
    if (shared_->options.on_refused) shared_->options.on_refused(status);
  }

  void release() {
    shared_->body_bytes -= reserved_;
    reserved_ = 0;
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> res_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  size_t reserved_ = 0;  // of Shared::body_bytes
  bool in_flight_ = false;  // counted in Shared::in_flight
};

}  // namespace

struct HttpServer::Impl {
  net::io_context ioc;
  // Keeps the network threads running while a handler runs and nothing else is pending (once
  // the acceptor is closed at stop), so its answer can still be written.
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  net::thread_pool handlers;
  tcp::acceptor acceptor;
  net::steady_timer retry;
  std::shared_ptr<Shared> shared;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  std::mutex stop_mu;
  bool stopped = false;

  Impl(std::shared_ptr<const Router> router, ServerOptions options)
      : ioc(std::max(1, options.threads)),
        handlers(static_cast<size_t>(std::max(1, options.handler_threads))),
        acceptor(net::make_strand(ioc)),
        retry(acceptor.get_executor()),
        shared(std::make_shared<Shared>()) {
    shared->router = std::move(router);
    shared->options = std::move(options);
    shared->handlers = &handlers;
    const ServerOptions& o = shared->options;
    beast::error_code ec;
    const auto address = net::ip::make_address(o.bind, ec);
    if (ec) throw UsageError("--bind '" + o.bind + "' is not an IP address: " + ec.message());
    const tcp::endpoint endpoint(address, o.port);
    shared->loopback = address.is_loopback();
    auto fail = [&](const char* what) {
      throw IoError(std::string("cannot ") + what + " " + o.bind + ":" + std::to_string(o.port) + ": " + ec.message());
    };
    if (acceptor.open(endpoint.protocol(), ec)) fail("open a socket for");
    if (acceptor.set_option(net::socket_base::reuse_address(true), ec)) fail("set options on");
    if (acceptor.bind(endpoint, ec)) fail("bind");
    if (acceptor.listen(net::socket_base::max_listen_connections, ec)) fail("listen on");
    port = acceptor.local_endpoint().port();
    accept();
    for (int i = 0; i < std::max(1, o.threads); ++i) threads.emplace_back([this] { ioc.run(); });
  }

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // Out of file descriptors (EMFILE) and the like: accepting again at once would spin;
        // the connections waiting stay in the backlog meanwhile.
        retry.expires_after(std::chrono::milliseconds(50));
        retry.async_wait([this](beast::error_code e) {
          if (!e) accept();
        });
        return;
      }
      if (shared->connections.load() >= shared->options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), shared)->start();
      }
      accept();
    });
  }

  void stop() {
    std::lock_guard lock(stop_mu);
    if (stopped) return;
    stopped = true;
    shared->stopping = true;  // answers written from now on close their connection
    // No more accepting: the acceptor lives on its strand, so it is closed there; connections
    // still in the kernel's backlog are refused with it.
    std::promise<void> closed;
    net::post(acceptor.get_executor(), [&] {
      beast::error_code ec;
      acceptor.close(ec);
      retry.cancel();
      closed.set_value();
    });
    closed.get_future().wait();
    // The requests being handled finish and their answers are written while the network threads
    // still run (bounded: a handler that never returns does not hold the exit forever).
    {
      std::unique_lock flight(shared->flight_mu);
      shared->flight_cv.wait_for(flight, shared->options.stop_timeout, [&] { return shared->in_flight == 0; });
    }
    // Then idle and half-read connections are closed (their pending reads end, and the sessions
    // with them; bounded too). What a handler past the bound posts back lands in the stopped
    // io_context and is destroyed with it.
    {
      std::vector<std::function<void()>> close_all;
      {
        std::lock_guard sessions(shared->sessions_mu);
        for (auto& [key, closer] : shared->closers) close_all.push_back(closer);
      }
      for (auto& c : close_all) c();
    }
    for (int i = 0; i < 1000 && shared->connections.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    work.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
    handlers.join();
  }
};

HttpServer::HttpServer(std::shared_ptr<const Router> router, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(router), std::move(options))) {}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::stop() { impl_->stop(); }

}  // namespace ckpt::serve
