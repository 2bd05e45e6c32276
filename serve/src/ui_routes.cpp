#include <ckpt/serve/ui_routes.hpp>

#include "ui_assets.hpp"
#include "ui_stats.hpp"
#include "ui_views.hpp"

#include <ckpt/errors.hpp>

#include <charconv>
#include <new>

namespace ckpt::serve {

namespace {

using ui::HttpError;
using ui::json;

// The page runs only its own files: no script, style or connection elsewhere, no plugins, no
// framing; inline script and style are refused too, so text from a checkpoint that reached
// the page as markup by mistake could still run nothing.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void secure(Response& r) {
  r.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-store");
}

Response json_response(const json& j) {
  Response r;
  r.content_type = "application/json";
  // Names from files need not be UTF-8: replaced rather than refused.
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  secure(r);
  return r;
}

const std::string& param(const Request& q, const char* key, bool required) {
  static const std::string none;
  auto it = q.query.find(key);
  if (it != q.query.end()) return it->second;
  if (required) throw HttpError(400, std::string("query parameter '") + key + "' is missing");
  return none;
}

// A decimal integer in [lo, hi], nothing else (no sign, no spaces, no trailing bytes).
std::optional<int64_t> int_param(const Request& q, const char* key, int64_t lo, int64_t hi) {
  const std::string& s = param(q, key, false);
  if (s.empty()) {
    if (q.query.count(key)) throw HttpError(400, std::string("query parameter '") + key + "' is empty");
    return std::nullopt;
  }
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
    throw HttpError(400, std::string("query parameter '") + key + "' must be an integer in " + std::to_string(lo) +
                             ".." + std::to_string(hi) + ", not '" + s + "'");
  return v;
}

ui::Resolved resolve(const ServedList& served, const Request& q, const char* ckpt, const char* version,
                     const char* file) {
  return ui::resolve(served(), param(q, ckpt, true), int_param(q, version, 0, INT64_MAX), param(q, file, false));
}

Response api(const ServedList& served, const UiOptions& options, const Request& q) {
  const std::string what = q.path.substr(std::string_view("/api/ui/").size());
  if (what == "checkpoints") return json_response(ui::checkpoints_json(served(), options.mode));
  if (what == "tree") {
    auto r = resolve(served, q, "ckpt", "version", "file");
    return json_response(ui::tree_json(r, r.open()));
  }
  if (what == "stats") {
    auto r = resolve(served, q, "ckpt", "version", "file");
    const std::string& tensor = param(q, "tensor", true);
    const int bins = static_cast<int>(int_param(q, "bins", 1, ui::kMaxBins).value_or(ui::kDefaultBins));
    return json_response(ui::stats_json(r.open(), tensor, bins));
  }
  if (what == "diff") {
    auto a = resolve(served, q, "a", "aversion", "afile");
    auto b = resolve(served, q, "b", "bversion", "bfile");
    return json_response(ui::diff_json(a, b));
  }
  if (what == "metrics") return json_response(ui::metrics_json(resolve(served, q, "ckpt", "version", "file")));
  if (what == "verify") return json_response(ui::verify_json(resolve(served, q, "ckpt", "version", "file").open(), options.pubkey));
  throw HttpError(404, "no page API '" + q.path + "'");
}

// Every failure becomes a JSON error: the page shows the message, the server keeps serving.
Response guarded(const std::function<Response()>& f) {
  Response r;
  try {
    return f();
  } catch (const HttpError& e) {
    r = json_error(e.status, e.what());
  } catch (const UsageError& e) {
    r = json_error(400, e.what());
  } catch (const LimitError& e) {
    r = json_error(413, e.what());
  } catch (const IoError& e) {
    r = json_error(500, e.what());
  } catch (const Error& e) {
    // The checkpoint itself cannot be read as asked (format, integrity, plugin, unsupported).
    r = json_error(422, e.what());
  } catch (const std::bad_alloc&) {
    r = json_error(503, "out of memory");
  } catch (const std::exception& e) {
    r = json_error(500, e.what());
  }
  secure(r);
  return r;
}

}  // namespace

void add_ui_routes(Router& router, ServedList served, UiOptions options) {
  auto shared = std::make_shared<const UiOptions>(std::move(options));
  router.add("GET", "/api/ui/", [served, shared](const Request& q) {
    return guarded([&] { return api(served, *shared, q); });
  });
  router.add("GET", "/", [](const Request& q) {
    return guarded([&] {
      const std::string path = q.path == "/" ? "/index.html" : q.path;
      for (const auto& a : ui::assets()) {
        if (a.path != path) continue;
        Response r;
        r.content_type = std::string(a.content_type);
        r.body = std::string(a.bytes);
        secure(r);
        return r;
      }
      throw HttpError(404, "no page at '" + q.path + "'");
    });
  });
}

void add_ui_routes(Router& router, ServedList served) { add_ui_routes(router, std::move(served), UiOptions{}); }

std::filesystem::path newest_training_file(const std::filesystem::path& folder) {
  const auto files = ui::training_files(folder);
  return files.empty() ? std::filesystem::path() : folder / files.back().name;
}

}  // namespace ckpt::serve
