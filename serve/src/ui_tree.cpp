// The page's views of one checkpoint: the list of what is served, a checkpoint's tree and schema
// parts, a tensor's statistics and the full hash check.
#include "ui_stats.hpp"
#include "ui_views.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>
#include <ckpt/signer.hpp>

#include <algorithm>
#include <cmath>

namespace ckpt::serve::ui {

namespace {

// Attribute values are shown, not used: arrays past 16 elements and text past this are cut,
// so a 90k-entry meta/integrity or a large torch layout cannot swell every tree answer.
constexpr size_t kMaxValueText = 2000;

std::string value_text(const Value& v, bool* cut) {
  std::string s = value_to_string(v, 16);
  *cut = false;
  if (s.size() > kMaxValueText) {
    s.resize(kMaxValueText);
    *cut = true;
  }
  return s;
}

json attributes_json(const Group& g) {
  json out = json::array();
  for (const auto& a : g.attributes()) {
    bool cut = false;
    json item{{"name", a.name}, {"type", std::string(value_type_name(value_type(a.value)))}, {"text", value_text(a.value, &cut)}};
    if (cut) item["truncated"] = true;
    // Numbers also as numbers, for the page's own use (metrics, summaries).
    if (auto* i = std::get_if<int64_t>(&a.value)) item["value"] = *i;
    if (auto* d = std::get_if<double>(&a.value)) item["value"] = number(*d);
    if (auto* b = std::get_if<bool>(&a.value)) item["value"] = *b;
    out.push_back(std::move(item));
  }
  return out;
}

json group_json(const Group& g, const std::string& name, const std::string& path) {
  json children = json::array();
  for (const auto& c : g.children()) {
    const std::string p = join_path(path, c.name);
    if (c.is_group()) {
      children.push_back(group_json(c.group(), c.name, p));
      continue;
    }
    const Tensor& t = c.tensor();
    children.push_back({{"kind", "tensor"}, {"name", c.name}, {"path", p}, {"dtype", std::string(ckpt::name(t.dtype()))},
                        {"shape", t.shape()}, {"numel", t.numel()}, {"bytes", t.nbytes()}});
  }
  return {{"kind", "group"}, {"name", name}, {"path", path}, {"attributes", attributes_json(g)},
          {"children", std::move(children)}, {"tensors", g.tensor_count()}, {"bytes", g.tensor_bytes()}};
}

const std::string* string_attr(const Group* g, const char* name) {
  const Value* v = g ? g->attribute(name) : nullptr;
  return v ? std::get_if<std::string>(v) : nullptr;
}

json part_json(const Document& doc, const std::string& path, const std::string& title) {
  const Group* g = doc.find_group_path(path);
  json j{{"path", path}, {"title", title}, {"present", g != nullptr}};
  if (g) {
    j["attributes"] = g->attributes().size();
    j["children"] = g->children().size();
    j["tensors"] = g->tensor_count();
    j["bytes"] = g->tensor_bytes();
  }
  return j;
}

json schema_json(const OpenedCheckpoint& opened) {
  const Document& doc = opened.tree();
  const Group* meta = doc.find_group("meta");
  json s{{"checkpoint", is_checkpoint(doc)}};
  if (const Value* v = meta ? meta->attribute("schema_version") : nullptr)
    if (auto* i = std::get_if<int64_t>(v)) s["schema_version"] = *i;
  if (auto* p = string_attr(meta, "producer")) s["producer"] = *p;
  if (auto* p = string_attr(meta, "created")) s["created"] = *p;
  s["parts"] = json::array({part_json(doc, "model/spec", "model spec"), part_json(doc, "model/state", "model state"),
                            part_json(doc, "optimizer", "optimizer"), part_json(doc, "trainer", "trainer state"),
                            part_json(doc, "meta", "meta"), part_json(doc, "extra", "extra")});

  // The record's structure against the tree (no tensor data read); /api/ui/verify reads it. A
  // version held in memory has none: the server checked the file's record when it loaded it.
  const Group* integrity = meta && !opened.in_memory() ? meta->find_group("integrity") : nullptr;
  json h{{"recorded", integrity != nullptr}};
  if (opened.in_memory()) h["in_memory"] = true;
  if (integrity) {
    if (auto* a = string_attr(integrity, "algorithm")) h["algorithm"] = *a;
    const std::string* enc = string_attr(integrity, "manifest_encoding");
    h["manifest_encoding"] = enc ? *enc : std::string("ckpt-manifest-1 (ckpt 0.1)");
    h["hashes"] = recorded_digests(doc).size();
  }
  h["problems"] = opened.in_memory() ? std::vector<std::string>{} : record_problems(doc);
  s["integrity"] = std::move(h);

  json sig{{"present", false}, {"checked", false}};
  if (auto signer = opened.signer()) {
    sig["present"] = true;
    sig["key_id"] = *signer;
  }
  if (!opened.signature_problem().empty()) sig["problem"] = opened.signature_problem();
  if (auto legacy = legacy_signer(doc)) sig["legacy_key_id"] = *legacy;
  s["signature"] = std::move(sig);
  return s;
}

}  // namespace

json number(double v) {
  if (std::isfinite(v)) return v;
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}

json checkpoints_json(const std::vector<ServedCheckpoint>& served, const std::string& mode) {
  json list = json::array();
  for (const auto& s : served) {
    json item{{"name", s.model}, {"version", s.version}, {"source", s.source}, {"path", s.path}};
    const auto files = training_files(s.source);
    item["training_folder"] = !files.empty();
    json names = json::array();
    for (const auto& f : files) names.push_back({{"name", f.name}, {"step", f.step}});
    item["files"] = std::move(names);
    list.push_back(std::move(item));
  }
  return {{"mode", mode}, {"checkpoints", std::move(list)}};
}

json tree_json(const Resolved& what, const OpenedCheckpoint& opened) {
  json j{{"name", what.served.model}, {"version", what.served.version}, {"label", what.label()},
         {"file", what.file_name}, {"format", opened.format()}, {"path", opened.file().string()},
         {"in_memory", opened.in_memory()}};
  j["schema"] = schema_json(opened);
  j["tree"] = group_json(opened.tree(), "", "");
  return j;
}

json stats_json(const OpenedCheckpoint& opened, const std::string& tensor, int bins) {
  const Tensor* t = opened.find_tensor(tensor);
  if (!t) throw HttpError(404, "'" + opened.label() + "' has no tensor '" + tensor + "'");
  check_tensor_size(t->nbytes(), tensor);
  MemoryLease lease(t->nbytes());
  std::vector<std::byte> buffer;
  auto bytes = opened.bytes(tensor, *t, buffer);
  const TensorStats s = tensor_stats(t->dtype(), bytes, t->numel(), bins);
  json j{{"tensor", tensor}, {"dtype", std::string(name(t->dtype()))}, {"shape", t->shape()}, {"bytes", t->nbytes()},
         {"count", s.count}, {"finite", s.finite}, {"zeros", s.zeros},
         {"zero_share", s.count ? static_cast<double>(s.zeros) / static_cast<double>(s.count) : 0.0},
         {"nan", s.nan}, {"pos_inf", s.pos_inf}, {"neg_inf", s.neg_inf}, {"complex_components", is_complex(t->dtype())}};
  if (s.has_range) {
    j["min"] = s.min;
    j["max"] = s.max;
    // Finite values can still sum past the largest double.
    j["mean"] = number(s.mean);
    j["std"] = number(s.std);
    j["histogram"] = {{"edges", s.edges}, {"counts", s.counts}};
  }
  return j;
}

json verify_json(const OpenedCheckpoint& opened, const std::optional<PublicKey>& pubkey) {
  json j;
  // verify holds one tensor at a time (read into one buffer; an in-memory checkpoint is there).
  uint64_t largest = 0;
  opened.tree().for_each_tensor([&](const std::string& path, const Tensor& t) {
    check_tensor_size(t.nbytes(), path);
    largest = std::max<uint64_t>(largest, t.nbytes());
  });
  if (opened.in_memory()) {
    // What predictions use, checked against the file's recorded hashes when the server loaded
    // it; the Checkpoint held keeps no record to check it against again.
    j["hashes"] = {{"in_memory", true}, {"recorded", false}, {"tensors_checked", opened.tree().tensor_count()},
                   {"bytes_checked", opened.tree().tensor_bytes()}, {"problems", json::array()}, {"ok", true}};
  } else {
    MemoryLease lease(largest);
    VerifyReport r = opened.verify();
    j["hashes"] = {{"recorded", r.has_integrity}, {"tensors_checked", r.tensors_checked},
                   {"bytes_checked", r.bytes_checked}, {"problems", r.problems}, {"ok", r.ok()}};
  }
  json sig{{"present", false}, {"checked", false}};
  if (auto signer = opened.signer()) {
    sig["present"] = true;
    sig["key_id"] = *signer;
    if (pubkey) {
      SignatureReport s = opened.check_signature(*pubkey);
      sig["checked"] = true;
      sig["ok"] = s.ok();
      sig["problems"] = s.problems;
      sig["key_id"] = s.key_id;
    }
  }
  if (!opened.signature_problem().empty()) sig["problem"] = opened.signature_problem();
  j["signature"] = std::move(sig);
  return j;
}

}  // namespace ckpt::serve::ui
