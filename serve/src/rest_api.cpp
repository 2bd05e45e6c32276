// TensorFlow Serving's REST API over the served models (docs/serving.md maps each part):
//   GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model_version_status
//   GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature_def
//   POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    predictions / outputs
//   GET  /metrics                                                 Prometheus text
#include "predict_json.hpp"
#include "served_model.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>

#include <chrono>

namespace ckpt::serve {

namespace {

using json = nlohmann::json;
constexpr std::string_view kPrefix = "/v1/models/";

// A request's target below /v1/models/.
struct Target {
  std::string model;
  std::optional<int64_t> version;
  std::optional<std::string> label;
  std::string verb;  // "" (status), "metadata" or what follows ':' ("predict")
};

// Throws UsageError for a malformed version; nullopt for a path of another shape (404).
std::optional<Target> parse_target(const std::string& path, bool post) {
  std::string rest = path.substr(kPrefix.size());
  Target t;
  if (post) {
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    t.verb = rest.substr(colon + 1);
    rest.resize(colon);
  } else if (rest.ends_with("/metadata")) {
    t.verb = "metadata";
    rest.resize(rest.size() - 9);
  }
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t slash = rest.find('/', at);
    parts.push_back(rest.substr(at, slash == std::string::npos ? std::string::npos : slash - at));
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  if (parts.size() != 1 && parts.size() != 3) return std::nullopt;
  t.model = parts[0];
  if (parts.size() == 3) {
    if (parts[1] == "versions") {
      const std::string& v = parts[2];
      if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
        throw UsageError("version '" + v + "' is not a non-negative integer");
      t.version = std::stoll(v);
    } else if (parts[1] == "labels") {
      t.label = parts[2];
    } else {
      return std::nullopt;
    }
  }
  return t;
}

class NotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

json status_entry(int64_t version, const char* state, const std::string& code, const std::string& message) {
  return {{"version", std::to_string(version)},
          {"state", state},
          {"status", {{"error_code", code}, {"error_message", message}}}};
}

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

Response ok_json(const json& j) {
  Response r;
  r.body = dump(j);
  return r;
}

// The version a target names: the one served, when the version or label names it.
std::shared_ptr<const Version> resolve(const Served& m, const Target& t) {
  auto v = m.now();
  if (!v) throw NotFound("model '" + m.name + "' has no version loaded");
  if (t.version && *t.version != v->number)
    throw NotFound("model '" + m.name + "' version " + std::to_string(*t.version) + " is not served (version " +
                   std::to_string(v->number) + " is)");
  if (t.label && !(m.ref && m.ref->alias && *m.ref->alias == *t.label))
    throw NotFound("model '" + m.name + "' has no label '" + *t.label + "'" +
                   (m.ref && m.ref->alias ? " (its label is '" + *m.ref->alias + "')" : " (it follows no registry alias)"));
  return v;
}

json model_status(const Served& m, const Target& t) {
  json list = json::array();
  std::optional<Failure> failure;
  {
    std::lock_guard lock(m.mu);
    failure = m.failure;
  }
  auto v = m.now();
  // A version asked for by number may be the one that failed to load.
  if (t.version && failure && failure->version == *t.version && (!v || v->number != *t.version)) {
    list.push_back(status_entry(failure->version, "END", "UNKNOWN", failure->message));
    return {{"model_version_status", list}};
  }
  v = resolve(m, t);
  list.push_back(status_entry(v->number, "AVAILABLE", "OK", ""));
  if (!t.version && !t.label && failure && failure->version > v->number)
    list.push_back(status_entry(failure->version, "END", "UNKNOWN", failure->message));
  return {{"model_version_status", list}};
}

json tensor_info(const std::string& name, const Shape& sample) {
  json dims = json::array({{{"size", "-1"}, {"name", ""}}});
  for (int64_t d : sample) dims.push_back({{"size", std::to_string(d)}, {"name", ""}});
  return {{"dtype", "DT_FLOAT"}, {"tensor_shape", {{"dim", dims}, {"unknown_rank", false}}}, {"name", name}};
}

json model_metadata(const Served& m, const Target& t) {
  auto v = resolve(m, t);
  const auto& b = *v->batcher;
  json sig = {{"inputs", {{detail::kInputName, tensor_info(detail::kInputName, b.input_shape())}}},
              {"outputs", {{detail::kOutputName, tensor_info(detail::kOutputName, b.output_shape())}}},
              {"method_name", "tensorflow/serving/predict"}};
  json j = {{"model_spec", {{"name", m.name}, {"signature_name", ""}, {"version", std::to_string(v->number)}}},
            {"metadata", {{"signature_def", {{"signature_def", {{detail::kSignatureName, sig}}}}}}}};
  // ckpt's own part, beside what TensorFlow Serving clients read.
  json served = {{"source", m.source}, {"path", v->path}, {"integrity", v->integrity}};
  if (!v->signature.empty()) served["signature"] = v->signature;
  // Batch sizes whose rows round alike; requests are only put together within one of them.
  served["batch_classes"] = b.describe_classes();
  if (const Value* step = v->checkpoint->trainer.attribute("step"))
    if (auto* s = std::get_if<int64_t>(step)) served["step"] = *s;
  j["ckpt"] = served;
  return j;
}

}  // namespace

void ModelServer::add_routes(Router& router) const {
  auto impl = impl_;
  // Every answer of the API is counted by model (a served name, or "" for any other), API and
  // status.
  auto counted = [impl](const Request& req, bool post) {
    const auto start = std::chrono::steady_clock::now();
    std::string model, api = post ? "predict" : "status";
    Response r;
    try {
      auto t = parse_target(req.path, post);
      if (!t) {
        r = json_error(404, "no such resource: " + req.path);
      } else {
        if (t->verb == "metadata") api = "metadata";
        const Served* m = impl->find(t->model);
        if (m) model = m->name;
        if (post && t->verb != "predict") {
          r = json_error(t->verb == "classify" || t->verb == "regress" ? 501 : 404,
                         "':" + t->verb + "' is not served; ckpt serve answers ':predict'");
        } else if (!m) {
          r = json_error(404, "no model named '" + t->model + "' is served");
        } else if (!post) {
          r = ok_json(t->verb == "metadata" ? model_metadata(*m, *t) : model_status(*m, *t));
        } else {
          auto v = resolve(*m, *t);
          const auto& b = *v->batcher;
          detail::PredictInput in;
          {
            impl->parse_slots.acquire();
            struct Release {
              std::counting_semaphore<64>& s;
              ~Release() { s.release(); }
            } release{impl->parse_slots};
            in = detail::parse_predict(req.body, b.input_shape(), impl->options.max_instances);
          }
          std::vector<float> out = v->batcher->run(in.values, in.rows);
          r.body = detail::format_predict(in, out, b.output_shape());
        }
      }
    } catch (const NotFound& e) {
      r = json_error(404, e.what());
    } catch (const UsageError& e) {
      r = json_error(400, e.what());
    } catch (const std::bad_alloc&) {
      r = json_error(503, "out of memory for this request");
    } catch (const std::exception& e) {
      r = json_error(500, std::string("internal error: ") + e.what());
    }
    impl->metrics.request(model, api, r.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return r;
  };
  router.add("GET", std::string(kPrefix), [counted](const Request& req) {
    // A predict path asked with GET: the method is wrong, not the path.
    if (req.path.find(':') != std::string::npos) return json_error(405, "use POST for " + req.path);
    return counted(req, false);
  });
  router.add("POST", std::string(kPrefix), [counted](const Request& req) {
    if (req.path.find(':') == std::string::npos) return json_error(405, "use GET for " + req.path + " (POST is for ...:predict)");
    return counted(req, true);
  });
  router.add("GET", "/metrics", [impl](const Request&) {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = impl->metrics.text();
    return r;
  });
}

}  // namespace ckpt::serve
