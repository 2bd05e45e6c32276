// ckpt serve's HTTP/1.1 server, on Boost.Beast: it accepts on one address, reads each request
// within bounds (header bytes, body bytes, a deadline for the whole request so a client sending
// a byte a second cannot hold anything for long), hands it to a Router on a pool of handler
// threads, and writes the answer. Network I/O is asynchronous, so a slow client or a handler that
// waits (a prediction queued for its batch) never blocks other connections.
#pragma once

#include <ckpt/serve/routes.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt::serve {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 8501;  // 0: an ephemeral port (see HttpServer::port)
  // Larger bodies are refused with 413 before they are read; larger headers with 431.
  size_t max_body_bytes = size_t{16} << 20;
  size_t max_header_bytes = size_t{16} << 10;
  // All bodies being read or answered together (each reserves its Content-Length, or
  // max_body_bytes when chunked); a request beyond gets 503.
  size_t max_total_body_bytes = size_t{256} << 20;
  // Threads for network I/O, and threads that run handlers (a handler may wait for its batch).
  int threads = 2;
  int handler_threads = 64;
  // A request (its header and body) must arrive within this, counted from its first byte being
  // awaited, and an idle keep-alive connection is closed after it.
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  // Connections beyond this are closed on accept; requests waiting for a handler thread beyond
  // max_queued get 503.
  size_t max_connections = 1024;
  size_t max_queued = 4096;
  // stop() waits this long for requests whose handler is running to be answered.
  std::chrono::milliseconds stop_timeout{30000};
  // Called with the status of every error the server answers itself, before any route (400 for
  // a malformed request, 403, 413, 431, 503), so it can be counted (ModelServer::count_refused).
  std::function<void(int status)> on_refused;
};

class HttpServer {
 public:
  // Binds and starts serving on background threads. Throws IoError when the address cannot be
  // bound, UsageError for an address that is not one.
  HttpServer(std::shared_ptr<const Router> router, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Stops accepting, lets the requests whose handler is running be answered (up to
  // stop_timeout), then closes every connection and joins every thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "/v1/a%20b" -> "/v1/a b"; nullopt for a malformed escape ('%' not followed by two hex digits)
// or one that decodes to a NUL byte. `plus_is_space` for query strings.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

}  // namespace ckpt::serve
