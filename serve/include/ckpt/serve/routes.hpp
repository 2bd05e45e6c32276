// What ckpt serve's HTTP server hands to the code that answers: one request, already bounded
// and parsed by the server (Boost.Beast), and the response to send. The prediction API
// (TensorFlow Serving's REST API) and the web page (`--ui`, `ckpt view`) each add their routes
// to one Router, so either can be served without the other.
#pragma once

#include <ckpt/checkpoint.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::serve {

struct Request {
  std::string method;                        // "GET", "POST", ...
  std::string path;                          // percent-decoded, without the query
  std::map<std::string, std::string> query;  // percent-decoded
  std::string content_type;
  std::string body;                          // at most the server's body limit
  std::string host;                          // the Host header, as sent (empty without one)
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": message} with `status`, as TensorFlow Serving answers errors.
Response json_error(int status, const std::string& message);

using Handler = std::function<Response(const Request&)>;

// Routes by method and path: an exact path, or a prefix ending in '/' (the handler parses the
// rest). The first route added that matches answers; no match is the server's 404.
class Router {
 public:
  void add(std::string method, std::string path, Handler handler);
  std::optional<Response> dispatch(const Request& request) const;
  // Whether some route matches `path` with any method (the server's 405 rather than 404).
  bool has_path(const std::string& path) const;

 private:
  struct Route {
    std::string method, path;
    Handler handler;
  };
  std::vector<Route> routes_;
};

// One checkpoint the server shows: a model version being served, or the file `ckpt view` opened.
struct ServedCheckpoint {
  std::string model;    // the name clients use
  int64_t version = 0;  // the served version (1, 2, ... as versions are swapped in)
  std::string source;   // what was given: a path, a training folder, registry:NAME@ALIAS
  std::string path;     // the file or sharded folder the version was loaded from
  std::shared_ptr<const Checkpoint> checkpoint;
};

// A snapshot of what is served now; called from request threads, so it must be thread-safe.
using ServedList = std::function<std::vector<ServedCheckpoint>()>;

}  // namespace ckpt::serve
