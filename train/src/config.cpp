#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/train/config.hpp>
#include <ckpt/train/model.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace ckpt::train {

namespace {

using json = nlohmann::json;

struct Ctx {
  std::string file;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw UsageError(file + ": " + key + ": " + what);
  }
  void only(const json& j, const std::string& where, std::initializer_list<const char*> keys) const {
    if (!j.is_object()) fail(where, "expected an object");
    for (const auto& [k, v] : j.items()) {
      bool ok = false;
      for (const char* key : keys) ok = ok || k == key;
      if (!ok) {
        std::string list;
        for (const char* key : keys) list += (list.empty() ? "" : ", ") + std::string(key);
        fail(where.empty() ? k : where + "." + k, "unknown key (known: " + list + ")");
      }
    }
  }
  int64_t integer(const json& j, const std::string& key, int64_t min) const {
    if (!j.is_number_integer()) fail(key, "expected an integer, got " + j.dump());
    int64_t v = j.get<int64_t>();
    if (v < min) fail(key, "must be at least " + std::to_string(min));
    return v;
  }
  std::string string(const json& j, const std::string& key) const {
    if (!j.is_string()) fail(key, "expected a string, got " + j.dump());
    return j.get<std::string>();
  }
};

// Plain JSON values become attributes; objects become groups.
void to_group(const json& j, Group& g, const std::string& where, const Ctx& ctx) {
  for (const auto& [k, v] : j.items()) {
    std::string key = where + "." + k;
    if (v.is_object()) {
      to_group(v, g.group(k), key, ctx);
    } else if (v.is_boolean()) {
      g.set(k, v.get<bool>());
    } else if (v.is_number_integer()) {
      g.set(k, v.get<int64_t>());
    } else if (v.is_number()) {
      g.set(k, v.get<double>());
    } else if (v.is_string()) {
      g.set(k, v.get<std::string>());
    } else if (v.is_array()) {
      bool all_int = true, all_num = true, all_str = true;
      for (const auto& e : v) {
        all_int &= e.is_number_integer();
        all_num &= e.is_number();
        all_str &= e.is_string();
      }
      if (all_int && !v.empty())
        g.set(k, v.get<std::vector<int64_t>>());
      else if (all_num && !v.empty())
        g.set(k, v.get<std::vector<double>>());
      else if (all_str && !v.empty())
        g.set(k, v.get<std::vector<std::string>>());
      else
        ctx.fail(key, "expected a non-empty array of numbers or strings");
    } else {
      ctx.fail(key, "null is not allowed");
    }
  }
}

Group spec_from_json(const json& m, const Ctx& ctx) {
  if (m.contains("spec")) {
    ctx.only(m, "model", {"spec"});
    Group g;
    to_group(m["spec"], g, "model.spec", ctx);
    return g;
  }
  ctx.only(m, "model", {"type", "hidden"});
  if (!m.contains("type")) ctx.fail("model.type", "missing (mlp, convnet, logistic_regression, linear_regression, or give model.spec)");
  std::string type = ctx.string(m["type"], "model.type");
  const int64_t in = 28 * 28, classes = 10;
  if (type == "convnet") return Model::convnet_spec();
  if (type == "logistic_regression") return Model::logistic_regression_spec(in, classes);
  if (type == "linear_regression") return Model::linear_regression_spec(in, classes);
  if (type == "mlp") {
    std::vector<int64_t> hidden = {256, 128};
    if (m.contains("hidden")) {
      if (!m["hidden"].is_array() || m["hidden"].empty()) ctx.fail("model.hidden", "expected a non-empty array of layer sizes");
      hidden.clear();
      for (const auto& h : m["hidden"]) hidden.push_back(ctx.integer(h, "model.hidden", 1));
    }
    return Model::mlp_spec(in, hidden, classes);
  }
  ctx.fail("model.type", "unknown model '" + type + "' (known: mlp, convnet, logistic_regression, linear_regression)");
}

}  // namespace

TrainConfig TrainConfig::parse(const std::string& text, const std::string& source, const std::filesystem::path& base,
                               const Registry& registry) {
  Ctx ctx{source};
  json j;
  if (const size_t nul = text.find('\0'); nul != std::string::npos)
    throw UsageError(source + ": not valid JSON at byte " + std::to_string(nul) + ": a NUL byte");
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw UsageError(source + ": not valid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
  ctx.only(j, "", {"model", "optimizer", "schedule", "data", "epochs", "batch_size", "seed", "threads", "loss", "checkpoint",
                 "distributed"});
  TrainConfig c;
  c.source = text;
  if (!j.contains("model")) ctx.fail("model", "missing");
  c.model_spec = spec_from_json(j["model"], ctx);
  if (!j.contains("optimizer")) ctx.fail("optimizer", "missing (e.g. {\"type\": \"sgd\", \"lr\": 0.01})");
  if (!j["optimizer"].is_object()) ctx.fail("optimizer", "expected an object");
  to_group(j["optimizer"], c.optimizer, "optimizer", ctx);
  if (j.contains("schedule")) {
    if (!j["schedule"].is_object()) ctx.fail("schedule", "expected an object");
    to_group(j["schedule"], c.schedule, "schedule", ctx);
  }
  if (j.contains("data")) {
    const json& d = j["data"];
    ctx.only(d, "data", {"dir", "train_limit", "test_limit"});
    if (d.contains("dir")) c.data_dir = ctx.string(d["dir"], "data.dir");
    if (d.contains("train_limit")) c.train_limit = ctx.integer(d["train_limit"], "data.train_limit", 0);
    if (d.contains("test_limit")) c.test_limit = ctx.integer(d["test_limit"], "data.test_limit", 0);
  }
  if (j.contains("epochs")) c.epochs = ctx.integer(j["epochs"], "epochs", 1);
  if (j.contains("batch_size")) c.batch_size = ctx.integer(j["batch_size"], "batch_size", 1);
  if (j.contains("seed")) c.seed = static_cast<uint64_t>(ctx.integer(j["seed"], "seed", 0));
  if (j.contains("threads")) c.threads = static_cast<int>(ctx.integer(j["threads"], "threads", 1));
  if (j.contains("loss")) {
    c.loss = ctx.string(j["loss"], "loss");
    if (c.loss != "cross_entropy" && c.loss != "mse") ctx.fail("loss", "unknown loss '" + c.loss + "' (known: cross_entropy, mse)");
  }
  if (j.contains("distributed")) {
    const json& d = j["distributed"];
    ctx.only(d, "distributed", {"engine", "zero"});
    if (!d.contains("engine")) ctx.fail("distributed.engine", "missing (known: mpi)");
    c.distributed_engine = ctx.string(d["engine"], "distributed.engine");
    if (c.distributed_engine != "mpi") ctx.fail("distributed.engine", "unknown engine '" + c.distributed_engine + "' (known: mpi)");
    if (d.contains("zero")) {
      if (!d["zero"].is_number_integer() || (d["zero"].get<int64_t>() != 0 && d["zero"].get<int64_t>() != 1))
        ctx.fail("distributed.zero", "expected 0 (replicated optimizer state) or 1 (sharded across ranks, ZeRO stage 1), got " +
                                         d["zero"].dump());
      c.zero = static_cast<int>(d["zero"].get<int64_t>());
    }
  }
  if (j.contains("checkpoint")) {
    const json& k = j["checkpoint"];
    ctx.only(k, "checkpoint", {"backend", "dir", "every_n_epochs", "every_n_steps", "keep_last", "keep_best", "resume",
                               "background", "sharded", "options"});
    CheckpointConfig& cc = c.checkpoint;
    if (k.contains("backend")) cc.backend = ctx.string(k["backend"], "checkpoint.backend");
    if (k.contains("dir")) cc.dir = ctx.string(k["dir"], "checkpoint.dir");
    if (k.contains("every_n_epochs") && k.contains("every_n_steps"))
      ctx.fail("checkpoint", "give every_n_epochs or every_n_steps, not both");
    if (k.contains("every_n_epochs")) cc.every_n_epochs = ctx.integer(k["every_n_epochs"], "checkpoint.every_n_epochs", 1);
    if (k.contains("every_n_steps")) {
      cc.every_n_steps = ctx.integer(k["every_n_steps"], "checkpoint.every_n_steps", 1);
      cc.every_n_epochs = 0;
    }
    if (k.contains("keep_last")) cc.keep_last = ctx.integer(k["keep_last"], "checkpoint.keep_last", 0);
    if (k.contains("keep_best")) {
      const json& b = k["keep_best"];
      ctx.only(b, "checkpoint.keep_best", {"metric", "mode", "n"});
      if (!b.contains("metric")) ctx.fail("checkpoint.keep_best.metric", "missing (e.g. \"test_accuracy\")");
      cc.keep_best.metric = ctx.string(b["metric"], "checkpoint.keep_best.metric");
      static const char* metrics[] = {"test_accuracy", "test_loss", "train_accuracy", "train_loss"};
      if (std::find(std::begin(metrics), std::end(metrics), cc.keep_best.metric) == std::end(metrics))
        ctx.fail("checkpoint.keep_best.metric", "unknown metric '" + cc.keep_best.metric +
                                                    "' (known: test_accuracy, test_loss, train_accuracy, train_loss)");
      if (b.contains("mode")) cc.keep_best.mode = ctx.string(b["mode"], "checkpoint.keep_best.mode");
      if (cc.keep_best.mode != "max" && cc.keep_best.mode != "min") ctx.fail("checkpoint.keep_best.mode", "expected \"max\" or \"min\"");
      cc.keep_best.n = b.contains("n") ? ctx.integer(b["n"], "checkpoint.keep_best.n", 1) : 1;
    }
    if (k.contains("resume")) cc.resume = ctx.string(k["resume"], "checkpoint.resume");
    if (k.contains("background")) {
      if (!k["background"].is_boolean()) ctx.fail("checkpoint.background", "expected true or false");
      cc.background = k["background"].get<bool>();
    }
    if (k.contains("sharded")) {
      if (!k["sharded"].is_boolean()) ctx.fail("checkpoint.sharded", "expected true or false");
      cc.sharded = k["sharded"].get<bool>();
    }
    // Every rank takes part in a sharded save, in step with training; a writer thread per rank
    // with the commit deferred is not built yet.
    if (cc.sharded && cc.background)
      ctx.fail("checkpoint", "sharded and background together are not supported yet (sharded saves run in the foreground)");
    if (k.contains("options")) {
      if (!k["options"].is_object()) ctx.fail("checkpoint.options", "expected an object of strings");
      for (const auto& [key, v] : k["options"].items())
        cc.options.emplace_back(key, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  // The backend must be a format the registry knows, and one that can write.
  try {
    Format f = registry.get(c.checkpoint.backend);
    if (!f.info().can(CKPT_CAP_WRITE)) ctx.fail("checkpoint.backend", "format '" + c.checkpoint.backend + "' cannot write");
  } catch (const UsageError& e) {
    if (std::string(e.what()).rfind(source, 0) == 0) throw;
    ctx.fail("checkpoint.backend", e.what());
  }
  if (c.data_dir.is_relative()) c.data_dir = base / c.data_dir;
  if (c.checkpoint.dir.is_relative()) c.checkpoint.dir = base / c.checkpoint.dir;
  if (c.checkpoint.resume != "auto" && c.checkpoint.resume != "none" && std::filesystem::path(c.checkpoint.resume).is_relative())
    c.checkpoint.resume = (base / c.checkpoint.resume).string();
  return c;
}

TrainConfig TrainConfig::load(const std::filesystem::path& path, const Registry& registry) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot read training config '" + path.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  // Relative paths inside a config are taken from the working directory, as a training
  // script's would be.
  return parse(ss.str(), path.string(), {}, registry);
}

}  // namespace ckpt::train
