// `ckpt registry ...`: the model registry (docs/registry.md) from the command line.
#include "commands.hpp"
#include "text.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/signature.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace ckpt::cli {

namespace {

namespace mr = ckpt::model_registry;

struct RegistryArgs {
  std::string uri;
  // register
  std::string file, name, description, parent, config, run_start, run_end, format = "auto", signature, require_signed;
  std::vector<std::string> aliases, tags, metrics;
  // show / list / pull / ...
  std::string ref, out, to = "auto", alias, version_text;
  bool adopt_store = false;
  bool json = false, all = false, show_tensors = false, blake2b = false, allow_lossy = false, dry_run = false, minimize = false, maximize = false;
  std::vector<std::string> remove_tags;
  std::string metric, search_name;
  size_t limit = 20;
  double wait = 600;
};

RegistryArgs& registry_args() {
  static RegistryArgs a;
  return a;
}

std::pair<std::string, std::string> split_kv(const std::string& s, const char* what) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0) throw UsageError(std::string(what) + " '" + s + "' is not KEY=VALUE");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

double parse_metric_value(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError("metric " + key + "='" + text + "' is not a number");
}

std::unique_ptr<mr::ModelRegistry> open_registry(mr::ModelRegistry::Open mode = mr::ModelRegistry::Open::existing) {
  const auto& a = registry_args();
  return mr::ModelRegistry::open(a.uri.empty() ? mr::default_uri() : a.uri, mode);
}

std::string registry_bytes_text(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

nlohmann::ordered_json version_json(const mr::VersionInfo& v) {
  nlohmann::ordered_json j;
  j["name"] = v.name;
  j["version"] = v.version;
  j["status"] = mr::status_name(v.status);
  j["aliases"] = v.aliases;
  j["description"] = v.description;
  j["format"] = v.format;
  j["source"] = v.source;
  j["tensors"] = v.tensors;
  j["bytes"] = v.bytes;
  j["bytes_written"] = v.bytes_written;
  j["digest"] = v.digest;
  j["created_at"] = v.created_at;
  j["ready_at"] = v.ready_at;
  j["deleted_at"] = v.deleted_at;
  j["registered_by"] = v.registered_by;
  j["ckpt_version"] = v.ckpt_version;
  j["producer"] = v.producer;
  j["signer"] = v.signer;
  j["step"] = v.step ? nlohmann::ordered_json(*v.step) : nlohmann::ordered_json();
  j["seed"] = v.seed ? nlohmann::ordered_json(*v.seed) : nlohmann::ordered_json();
  j["run"] = {{"config", v.run_config}, {"start", v.run_start}, {"end", v.run_end}, {"host", v.run_host}};
  j["parent"] = {{"ref", v.parent}, {"digest", v.parent_digest}};
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  for (const auto& [k, x] : v.metrics) m[k] = x;
  j["metrics"] = m;
  nlohmann::ordered_json t = nlohmann::ordered_json::object();
  for (const auto& [k, x] : v.tags) t[k] = x;
  j["tags"] = t;
  return j;
}

void print_version(const mr::VersionInfo& v) {
  std::cout << v.name << "/" << v.version << "  " << mr::status_name(v.status);
  for (const auto& a : v.aliases) std::cout << "  @" << a;
  std::cout << "\n";
  auto line = [](const char* k, const std::string& val) {
    // Strings from checkpoints and users reach the terminal escaped (text.hpp).
    if (!val.empty()) std::cout << "  " << k << ": " << terminal_safe(val) << "\n";
  };
  line("description", v.description);
  line("format", v.format);
  std::cout << "  size: " << v.tensors << " tensors, " << v.bytes << " bytes (" << registry_bytes_text(v.bytes) << "), "
            << v.bytes_written << " new in the store\n";
  line("digest", v.digest.empty() ? "" : "blake2b-256:" + v.digest);
  line("source", v.source);
  line("registered", v.created_at + " by " + v.registered_by + " with " + v.ckpt_version);
  line("ready", v.ready_at);
  line("deleted", v.deleted_at);
  line("producer", v.producer);
  line("signed by key", v.signer);
  if (v.step) std::cout << "  step: " << *v.step << "\n";
  if (v.seed) std::cout << "  seed: " << *v.seed << "\n";
  line("run host", v.run_host);
  line("run start", v.run_start);
  line("run end", v.run_end);
  if (!v.run_config.empty())
    std::cout << "  run config: " << v.run_config.size() << " bytes (show --json prints it)\n";
  if (!v.parent.empty()) std::cout << "  parent: " << terminal_safe(v.parent) << " (blake2b-256:" << v.parent_digest << ")\n";
  for (const auto& [k, x] : v.metrics) std::printf("  metric %s: %.9g\n", terminal_safe(k).c_str(), x);
  for (const auto& [k, x] : v.tags) std::cout << "  tag " << terminal_safe(k) << "=" << terminal_safe(x) << "\n";
}

}  // namespace

Runner add_registry(CLI::App& app) {
  auto& a = registry_args();
  auto* cmd = app.add_subcommand("registry", "Model registry: versions, aliases, tags, lineage, deduplicated storage");
  cmd->require_subcommand(1);
  cmd->fallthrough();
  cmd->add_option("--registry", a.uri,
                  "registry URI: sqlite:///path/registry.db, sqlite://relative.db, postgresql://user@host/db?store=/folder "
                  "(default: $CKPT_REGISTRY, else sqlite://ckpt-registry/registry.db)");

  auto* init = cmd->add_subcommand("init", "Create the registry (or migrate an older one)");
  init->add_option("--require-signed", a.require_signed, "from now on refuse versions not signed by this public key");
  init->add_flag("--adopt-store", a.adopt_store,
                 "take a store that holds blobs but no store id (made before stores had ids) as this registry's own");

  auto* reg = cmd->add_subcommand("register", "Store a checkpoint (file or sharded folder) as the next version of NAME");
  reg->add_option("FILE", a.file, "checkpoint file or Hugging Face sharded folder")->required();
  reg->add_option("--name", a.name, "model name")->required();
  reg->add_option("--alias", a.aliases, "point this alias at the new version (repeatable)");
  reg->add_option("--tag", a.tags, "KEY=VALUE tag (repeatable)");
  reg->add_option("--metric", a.metrics, "KEY=NUMBER metric beside the checkpoint's trainer/metrics (repeatable)");
  reg->add_option("--description", a.description, "free text");
  reg->add_option("--parent", a.parent, "resumed or fine-tuned from: NAME/VERSION, NAME@ALIAS or a checkpoint file");
  reg->add_option("--config", a.config, "the training config file to record (default: the checkpoint's trainer/config)");
  reg->add_option("--run-start", a.run_start, "when the run started (ISO 8601)");
  reg->add_option("--run-end", a.run_end, "when the run ended (ISO 8601)");
  reg->add_option("--format", a.format, "the file's format (default: detect)");
  reg->add_option("--require-signed", a.require_signed, "refuse the file unless its signature is valid for this public key");
  reg->add_option("--signature", a.signature, "the signature file (default: FILE.sig)");

  auto* list = cmd->add_subcommand("list", "List models, or the versions of NAME");
  list->add_option("NAME", a.name, "model name");
  list->add_flag("--all", a.all, "include deleted versions");
  list->add_flag("--json", a.json, "one JSON document");

  auto* show = cmd->add_subcommand("show", "Show a version: NAME (latest), NAME/VERSION or NAME@ALIAS");
  show->add_option("REF", a.ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  show->add_flag("--json", a.json, "JSON");
  show->add_flag("--tensors", a.show_tensors, "also every tensor: path, dtype, shape, bytes, BLAKE2b-256");

  auto* alias = cmd->add_subcommand("alias", "Move or remove an alias");
  alias->require_subcommand(1);
  auto* alias_set = alias->add_subcommand("set", "Point NAME@ALIAS at VERSION (recorded in its history)");
  alias_set->add_option("NAME", a.name)->required();
  alias_set->add_option("ALIAS", a.alias)->required();
  alias_set->add_option("VERSION", a.version_text)->required();
  auto* alias_rm = alias->add_subcommand("rm", "Remove NAME@ALIAS (recorded in its history)");
  alias_rm->add_option("NAME", a.name)->required();
  alias_rm->add_option("ALIAS", a.alias)->required();

  auto* tag = cmd->add_subcommand("tag", "Set (KEY=VALUE) or remove (--rm KEY) tags of a version");
  tag->add_option("REF", a.ref, "NAME/VERSION or NAME@ALIAS")->required();
  tag->add_option("TAGS", a.tags, "KEY=VALUE");
  tag->add_option("--rm", a.remove_tags, "remove this tag (repeatable)");

  auto* history = cmd->add_subcommand("history", "Every move of an alias: NAME@ALIAS");
  history->add_option("REF", a.ref, "NAME@ALIAS")->required();
  history->add_flag("--json", a.json, "JSON");

  auto* search = cmd->add_subcommand("search", "Find READY versions by metric and tags");
  search->add_option("--name", a.search_name, "only this model");
  search->add_option("--metric", a.metric, "order by this metric (versions without it are left out)");
  search->add_flag("--max", a.maximize, "highest first (the default)");
  search->add_flag("--min", a.minimize, "lowest first");
  search->add_option("--tag", a.tags, "KEY=VALUE that must match (repeatable)");
  search->add_option("--limit", a.limit, "at most this many")->check(CLI::PositiveNumber);
  search->add_flag("--json", a.json, "JSON");

  auto* del = cmd->add_subcommand("delete", "Mark NAME/VERSION deleted (its bytes go at the next gc)");
  del->add_option("REF", a.ref, "NAME/VERSION")->required();

  auto* gc = cmd->add_subcommand("gc", "Remove deleted versions, versions left PENDING by dead registrants, and unreferenced blobs");
  gc->add_flag("-n,--dry-run", a.dry_run, "only say what would be removed");
  gc->add_option("--wait", a.wait, "seconds to wait for registrations in progress")->check(CLI::NonNegativeNumber);

  auto* pull = cmd->add_subcommand("pull", "Write a version to OUT in any installed format (atomic, every tensor re-hashed)");
  pull->add_option("REF", a.ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  pull->add_option("OUT", a.out, "output file")->required();
  pull->add_option("--to", a.to, "format (default: OUT's extension, else the registered format)");
  pull->add_flag("--allow-lossy", a.allow_lossy, "convert even when the target cannot hold everything");
  pull->add_option("--require-signed", a.require_signed, "refuse unless the version is signed by this public key");
  pull->add_flag("--blake2b", a.blake2b,
                 "accepted for old scripts: every pull checks each blob against its BLAKE2b-256");

  auto* verify = cmd->add_subcommand("verify", "Re-hash every blob of a version");
  verify->add_option("REF", a.ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();

  return [=]() -> int {
    auto& a = registry_args();
    using Open = mr::ModelRegistry::Open;
    std::optional<PublicKey> key;
    if (!a.require_signed.empty()) key = read_public_key(a.require_signed);
    if (init->parsed()) {
      auto r = a.adopt_store ? mr::ModelRegistry::open_adopting_store(a.uri.empty() ? mr::default_uri() : a.uri)
                             : open_registry(Open::create);
      if (key) r->require_signed(*key);
      std::cout << "registry " << r->describe() << ": schema version " << r->schema_version()
                << (key ? ", versions must be signed by key " + key->id() : std::string()) << "\n";
      return kOk;
    }
    if (reg->parsed()) {
      mr::RegisterOptions o;
      o.name = a.name;
      o.aliases = a.aliases;
      for (const auto& t : a.tags) o.tags.push_back(split_kv(t, "tag"));
      for (const auto& m : a.metrics) {
        auto [k, v] = split_kv(m, "metric");
        o.metrics.emplace_back(k, parse_metric_value(k, v));
      }
      o.description = a.description;
      o.parent = a.parent;
      o.run_config_file = a.config;
      if (!a.run_start.empty()) o.run_start = a.run_start;
      if (!a.run_end.empty()) o.run_end = a.run_end;
      o.format = a.format;
      o.require_signed = key;
      o.signature = a.signature;
      // Input that is wrong on its face is refused before a new registry would be created.
      mr::check_model_name(o.name);
      for (const auto& al : o.aliases) mr::check_alias(al);
      std::error_code ec;
      if (!std::filesystem::exists(a.file, ec)) throw UsageError("cannot register " + a.file + ": no such file or folder");
      {
        // A file that is not a checkpoint, or lacks the signature asked for, is refused before
        // a registry is made for it (the registry's own key is checked once it is open).
        ckpt::LoadOptions lo;
        lo.format = a.format;
        auto reader = ckpt::open(a.file, lo);
        if (key && !std::filesystem::is_directory(a.file, ec)) {
          const ckpt::SignatureReport rep = ckpt::verify_signature(a.file, *reader, *key, a.signature);
          if (!rep.ok()) {
            std::string msg = "refusing " + a.file + ": a valid signature by key " + key->id() + " is required:";
            for (const auto& p : rep.problems) msg += " " + p;
            throw IntegrityError(msg);
          }
        }
      }
      auto r = open_registry(Open::create);
      const mr::VersionInfo v = r->register_checkpoint(a.file, o);
      std::cout << "registered " << terminal_safe(a.file) << " as " << v.name << "/" << v.version << " (" << v.format << ", " << v.tensors
                << " tensors, " << v.bytes << " bytes, " << v.bytes_written << " new in the store)"
                << (v.aliases.empty() ? "" : " @" + v.aliases.front()) << "\n";
      return kOk;
    }
    // Commands that only read open an SQLite registry read-only when this user may not write it.
    const bool reads = list->parsed() || show->parsed() || history->parsed() || search->parsed() || pull->parsed() ||
                       verify->parsed();
    auto r = open_registry(reads ? Open::read : Open::existing);
    if (list->parsed()) {
      if (a.name.empty()) {
        auto models = r->list_models();
        if (a.json) {
          nlohmann::ordered_json j = nlohmann::ordered_json::array();
          for (const auto& m : models) {
            nlohmann::ordered_json al = nlohmann::ordered_json::object();
            for (const auto& [k, v] : m.aliases) al[k] = v;
            j.push_back({{"name", m.name}, {"versions", m.versions}, {"latest", m.latest}, {"aliases", al}, {"created_at", m.created_at}});
          }
          std::cout << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
          return kOk;
        }
        for (const auto& m : models) {
          std::cout << m.name << "  " << m.versions << " version" << (m.versions == 1 ? "" : "s") << ", latest " << m.latest;
          for (const auto& [k, v] : m.aliases) std::cout << "  @" << k << "=" << v;
          std::cout << "\n";
        }
        return kOk;
      }
      auto versions = r->list_versions(a.name, a.all);
      if (a.json) {
        nlohmann::ordered_json j = nlohmann::ordered_json::array();
        for (const auto& v : versions) j.push_back(version_json(v));
        std::cout << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
        return kOk;
      }
      std::string text;
      for (const auto& v : versions) {
        text += a.name + "/" + std::to_string(v.version) + "  " + mr::status_name(v.status) + "  " + v.created_at + "  " +
                v.format + "  " + registry_bytes_text(v.bytes);
        for (const auto& al : v.aliases) text += "  @" + al;
        text += "\n";
      }
      std::cout << text;
      return kOk;
    }
    if (show->parsed()) {
      const mr::Ref ref = mr::parse_ref(a.ref);
      const auto v = r->show(ref);
      std::vector<mr::TensorEntry> tensors;
      if (a.show_tensors && v.status != mr::Status::pending) tensors = r->tensors(mr::Ref{v.name, v.version, std::nullopt});
      if (a.json) {
        auto j = version_json(v);
        if (a.show_tensors) {
          j["tensor_list"] = nlohmann::ordered_json::array();
          for (const auto& t : tensors)
            j["tensor_list"].push_back({{"path", t.path}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}, {"blake2b", t.digest}});
        }
        std::cout << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
      } else {
        print_version(v);
        for (const auto& t : tensors) {
          std::string shape;
          for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? "," : "") + std::to_string(t.shape[i]);
          std::cout << "  tensor " << terminal_safe(t.path) << "  " << t.dtype << "[" << shape << "]  " << t.bytes << " bytes  blake2b-256:" << t.digest
                    << "\n";
        }
      }
      return kOk;
    }
    if (alias_set->parsed()) {
      const mr::Ref ref = mr::parse_ref(a.name + "/" + a.version_text);
      r->set_alias(ref.name, a.alias, *ref.version);
      std::cout << a.name << "@" << a.alias << " -> " << *ref.version << "\n";
      return kOk;
    }
    if (alias_rm->parsed()) {
      r->remove_alias(a.name, a.alias);
      std::cout << "removed " << a.name << "@" << a.alias << "\n";
      return kOk;
    }
    if (tag->parsed()) {
      const mr::Ref ref = mr::parse_ref(a.ref);
      if (a.tags.empty() && a.remove_tags.empty()) throw UsageError("registry tag: give KEY=VALUE or --rm KEY");
      for (const auto& t : a.tags) {
        auto [k, v] = split_kv(t, "tag");
        r->set_tag(ref, k, v);
      }
      for (const auto& k : a.remove_tags) r->remove_tag(ref, k);
      return kOk;
    }
    if (history->parsed()) {
      const mr::Ref ref = mr::parse_ref(a.ref);
      if (!ref.alias) throw UsageError("registry history: give NAME@ALIAS, not " + a.ref);
      auto moves = r->history(ref.name, *ref.alias);
      if (a.json) {
        nlohmann::ordered_json j = nlohmann::ordered_json::array();
        for (const auto& m : moves)
          j.push_back({{"version", m.version ? nlohmann::ordered_json(*m.version) : nlohmann::ordered_json()},
                       {"previous", m.previous ? nlohmann::ordered_json(*m.previous) : nlohmann::ordered_json()},
                       {"at", m.at},
                       {"by", m.by},
                       {"reason", m.reason}});
        std::cout << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
        return kOk;
      }
      for (const auto& m : moves) {
        std::cout << m.at << "  " << (m.previous ? std::to_string(*m.previous) : "-") << " -> "
                  << (m.version ? std::to_string(*m.version) : "(removed)") << "  " << terminal_safe(m.reason) << "  by "
                  << terminal_safe(m.by) << "\n";
      }
      return kOk;
    }
    if (search->parsed()) {
      if (a.minimize && a.maximize) throw UsageError("registry search: --max and --min together");
      mr::SearchQuery q;
      q.name = a.search_name;
      q.metric = a.metric;
      q.maximize = !a.minimize;
      for (const auto& t : a.tags) q.tags.push_back(split_kv(t, "tag"));
      q.limit = a.limit;
      auto found = r->search(q);
      if (a.json) {
        nlohmann::ordered_json j = nlohmann::ordered_json::array();
        for (const auto& v : found) j.push_back(version_json(v));
        std::cout << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
        return kOk;
      }
      for (const auto& v : found) {
        std::cout << v.name << "/" << v.version;
        if (!a.metric.empty())
          for (const auto& [k, x] : v.metrics)
            if (k == a.metric) std::printf("  %s=%.9g", terminal_safe(k).c_str(), x);
        for (const auto& al : v.aliases) std::cout << "  @" << al;
        std::cout << "\n";
      }
      return kOk;
    }
    if (del->parsed()) {
      const mr::Ref ref = mr::parse_ref(a.ref);
      if (!ref.version) throw UsageError("registry delete: give NAME/VERSION, not " + a.ref);
      r->delete_version(ref.name, *ref.version);
      std::cout << "deleted " << ref.text() << " (its bytes are removed by `ckpt registry gc`)\n";
      return kOk;
    }
    if (gc->parsed()) {
      mr::GcOptions o;
      o.dry_run = a.dry_run;
      o.wait_seconds = a.wait;
      const auto rep = r->gc(o);
      for (const auto& v : rep.versions) std::cout << (a.dry_run ? "would remove " : "removed ") << v << "\n";
      std::cout << "gc: " << (a.dry_run ? "would remove " : "removed ") << rep.pending_removed << " pending and "
                << rep.deleted_removed << " deleted versions, " << rep.blobs_removed << " blobs (" << rep.bytes_removed
                << " bytes), " << rep.temporaries_removed << " temporaries\n";
      return kOk;
    }
    if (pull->parsed()) {
      mr::PullOptions o;
      o.to = a.to;
      o.allow_lossy = a.allow_lossy;
      o.require_signed = key;
      o.blake2b = a.blake2b;
      const auto rep = r->pull(mr::parse_ref(a.ref), a.out, o);
      for (const auto& l : rep.losses) std::cerr << "ckpt: lossy: " << l << "\n";
      std::cout << "pulled " << rep.version.name << "/" << rep.version.version << " -> " << a.out << " (" << rep.format << ", "
                << rep.tensors << " tensors, " << rep.bytes << " bytes, every tensor checked (BLAKE2b-256)"
                << (rep.signature_checked ? ", signature checked" : "") << ")\n";
      return kOk;
    }
    if (verify->parsed()) {
      const auto rep = r->verify(mr::parse_ref(a.ref));
      for (const auto& p : rep.problems) std::cout << "problem: " << terminal_safe(p) << "\n";
      std::cout << a.ref << ": " << rep.tensors << " tensors, " << rep.bytes << " bytes, "
                << (rep.problems.empty() ? "every blob matches its digest" : std::to_string(rep.problems.size()) + " damaged")
                << "\n";
      if (rep.blobs_set_aside)
        std::cout << rep.blobs_set_aside << " damaged blob(s) moved into the store's tmp/ (gc removes them); "
                  << "registering the checkpoint again stores those tensors again\n";
      return rep.problems.empty() ? kOk : kFinding;
    }
    return kBadInput;
  };
}

}  // namespace ckpt::cli
