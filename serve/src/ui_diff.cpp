// The page's diff of two checkpoints: core's diff (ckpt/diff.hpp) finds what differs and the
// largest absolute change of each tensor; the relative change puts that against the tensor's
// scale in A, read once more for the tensors that differ only.
#include "ui_stats.hpp"
#include "ui_views.hpp"

#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace ckpt::serve::ui {

namespace {

std::string kind_name(DiffEntry::Kind k) {
  switch (k) {
    case DiffEntry::Kind::only_in_a: return "only_in_a";
    case DiffEntry::Kind::only_in_b: return "only_in_b";
    case DiffEntry::Kind::kind_changed: return "kind_changed";
    case DiffEntry::Kind::dtype_changed: return "dtype_changed";
    case DiffEntry::Kind::shape_changed: return "shape_changed";
    case DiffEntry::Kind::values_differ: return "values_differ";
    case DiffEntry::Kind::attribute_differs: return "attribute_differs";
  }
  return "?";
}

std::map<std::string, const Tensor*> tensors_of(const Document& doc) {
  std::map<std::string, const Tensor*> out;
  for (const auto& c : doc.children()) {
    if (c.name == "meta") continue;  // as core's diff: meta differs between any two saves
    if (c.is_tensor()) out[c.name] = &c.tensor();
    else c.group().for_each_tensor([&](const std::string& p, const Tensor& t) { out[p] = &t; }, c.name);
  }
  return out;
}

uint64_t largest(const std::map<std::string, const Tensor*>& ts) {
  uint64_t m = 0;
  for (const auto& [_, t] : ts) m = std::max<uint64_t>(m, t->nbytes());
  return m;
}

// A document with data, for core's in-memory diff: an in-memory checkpoint as it is, a file
// mapped where its format maps.
Document with_data(const OpenedCheckpoint& c) {
  return c.reader() ? c.reader()->load(true) : c.tree();
}

}  // namespace

json diff_json(const Resolved& ra, const Resolved& rb) {
  const OpenedCheckpoint a = ra.open(), b = rb.open();
  const auto ta = tensors_of(a.tree()), tb = tensors_of(b.tree());
  const bool both_files = !a.file().empty() && !b.file().empty();
  // Files: one tensor of each side in memory at a time. Otherwise whole documents (mapped where
  // possible), so the lease covers them all.
  for (const auto* side : {&ta, &tb})
    for (const auto& [p, t] : *side) check_tensor_size(t->nbytes(), p);
  uint64_t need = 0;
  if (both_files) {
    need = largest(ta) + largest(tb);
  } else {
    need = a.tree().tensor_bytes() + b.tree().tensor_bytes();
  }
  if (!both_files && need > kMemoryBudget)
    throw HttpError(413, "comparing an in-memory checkpoint needs both whole (" + std::to_string(need) +
                             " bytes), more than the page's budget (" + std::to_string(kMemoryBudget) + " bytes)");
  MemoryLease lease(need);
  const DiffReport report = both_files ? diff(a.file(), b.file()) : diff_documents(with_data(a), with_data(b));

  std::map<std::string, const DiffEntry*> by_path;
  json other = json::array();
  for (const auto& e : report.entries) {
    if (ta.count(e.path) || tb.count(e.path)) by_path[e.path] = &e;
    else other.push_back({{"path", e.path}, {"kind", kind_name(e.kind)}, {"detail", e.detail}});
  }

  std::set<std::string> paths;
  for (const auto& [p, _] : ta) paths.insert(p);
  for (const auto& [p, _] : tb) paths.insert(p);
  struct Row {
    json j;
    bool differs, structural;
    double rel, abs;
    std::string path;
  };
  std::vector<Row> rows;
  std::vector<std::byte> buffer;
  for (const auto& p : paths) {
    json j{{"path", p}};
    auto ia = ta.find(p), ib = tb.find(p);
    if (ia != ta.end()) j["a"] = {{"dtype", std::string(name(ia->second->dtype()))}, {"shape", ia->second->shape()}};
    if (ib != tb.end()) j["b"] = {{"dtype", std::string(name(ib->second->dtype()))}, {"shape", ib->second->shape()}};
    auto e = by_path.find(p);
    Row r{{}, e != by_path.end(), false, 0.0, 0.0, p};
    if (!r.differs) {
      j["kind"] = "same";
      j["max_abs"] = 0.0;
      j["max_rel"] = 0.0;
    } else {
      const DiffEntry& d = *e->second;
      j["kind"] = kind_name(d.kind);
      j["detail"] = d.detail;
      r.structural = d.kind != DiffEntry::Kind::values_differ;
      if (!r.structural) {
        r.abs = d.max_abs_diff;
        std::optional<Tensor> mapped;
        const Tensor& t = *ia->second;
        const double scale = max_abs_value(t.dtype(), a.bytes(p, t, buffer, mapped), t.numel());
        r.rel = scale > 0 ? r.abs / scale : (r.abs > 0 ? INFINITY : 0.0);
        if (std::isnan(r.rel)) r.rel = INFINITY;  // an infinite change against an infinite scale
        j["max_abs"] = number(r.abs);
        j["max_rel"] = number(r.rel);
      }
    }
    j["differs"] = r.differs;
    r.j = std::move(j);
    rows.push_back(std::move(r));
  }
  // What differs first: missing or reshaped tensors, then by relative change, then absolute.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
    if (x.differs != y.differs) return x.differs;
    if (x.structural != y.structural) return x.structural;
    if (x.rel != y.rel) return x.rel > y.rel;
    if (x.abs != y.abs) return x.abs > y.abs;
    return x.path < y.path;
  });
  json tensors = json::array();
  size_t differing = 0;
  for (auto& r : rows) {
    differing += r.differs;
    tensors.push_back(std::move(r.j));
  }
  return {{"a", ra.label()}, {"b", rb.label()}, {"identical", report.identical()},
          {"tensors_compared", report.tensors_compared}, {"attributes_compared", report.attributes_compared},
          {"tensors_differing", differing}, {"tensors", std::move(tensors)}, {"other", std::move(other)}};
}

}  // namespace ckpt::serve::ui
