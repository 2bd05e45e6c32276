#include <ckpt/serve/routes.hpp>

#include <nlohmann/json.hpp>

namespace ckpt::serve {

Response json_error(int status, const std::string& message) {
  Response r;
  r.status = status;
  // Messages may quote client bytes that are not UTF-8; replace rather than throw.
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

void Router::add(std::string method, std::string path, Handler handler) {
  routes_.push_back({std::move(method), std::move(path), std::move(handler)});
}

namespace {
bool path_matches(const std::string& route, const std::string& path) {
  const bool prefix = !route.empty() && route.back() == '/';
  return prefix ? path.starts_with(route) : path == route;
}
}  // namespace

std::optional<Response> Router::dispatch(const Request& request) const {
  for (const auto& r : routes_)
    if (r.method == request.method && path_matches(r.path, request.path)) return r.handler(request);
  return std::nullopt;
}

bool Router::has_path(const std::string& path) const {
  for (const auto& r : routes_)
    if (path_matches(r.path, path)) return true;
  return false;
}

}  // namespace ckpt::serve
