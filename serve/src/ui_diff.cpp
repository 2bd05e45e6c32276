// The page's diff of two checkpoints: core's diff (ckpt/diff.hpp) finds what differs and the
// largest absolute change of each tensor, over tensors the page reads one pair at a time (files
// are read, never mapped: ui_source.hpp); the relative change puts that against the tensor's
// scale in A.
#include "ui_stats.hpp"
#include "ui_views.hpp"

#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
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

// The tree with every tensor replaced by one and the same one-byte tensor: core's diff of two
// such trees finds what differs in groups and attributes (and a tensor that became a group)
// without any tensor data, which is compared below one tensor at a time.
Document structure_of(const Document& tree) {
  static const Tensor one_byte = Tensor::from(DType::u8, {1}, std::vector<uint8_t>{0});
  Document out = tree;
  std::function<void(Group&)> strip = [&](Group& g) {
    for (auto& c : g.children()) {
      if (c.is_tensor()) c.tensor() = one_byte;
      else strip(c.group());
    }
  };
  strip(out);
  return out;
}

std::string described(const Tensor& t) { return "tensor " + std::string(name(t.dtype())) + " " + shape_string(t.shape()); }

}  // namespace

json diff_json(const Resolved& ra, const Resolved& rb) {
  const OpenedCheckpoint a = ra.open(), b = rb.open();
  const auto ta = tensors_of(a.tree()), tb = tensors_of(b.tree());
  for (const auto* side : {&ta, &tb})
    for (const auto& [p, t] : *side) check_tensor_size(t->nbytes(), p);
  // One tensor of each side in memory at a time, read (an in-memory side is there already).
  MemoryLease lease((a.in_memory() ? 0 : largest(ta)) + (b.in_memory() ? 0 : largest(tb)));
  const DiffReport structure = diff_documents(structure_of(a.tree()), structure_of(b.tree()));

  json other = json::array();
  std::map<std::string, const DiffEntry*> kind_changed;
  for (const auto& e : structure.entries) {
    if (ta.count(e.path) || tb.count(e.path)) {
      if (e.kind == DiffEntry::Kind::kind_changed) kind_changed[e.path] = &e;
      continue;  // tensors: compared below
    }
    other.push_back({{"path", e.path}, {"kind", kind_name(e.kind)}, {"detail", e.detail}});
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
  std::vector<std::byte> buffer_a, buffer_b;
  size_t compared = 0;
  for (const auto& p : paths) {
    json j{{"path", p}};
    auto ia = ta.find(p), ib = tb.find(p);
    if (ia != ta.end()) j["a"] = {{"dtype", std::string(name(ia->second->dtype()))}, {"shape", ia->second->shape()}};
    if (ib != tb.end()) j["b"] = {{"dtype", std::string(name(ib->second->dtype()))}, {"shape", ib->second->shape()}};
    Row r{{}, true, true, 0.0, 0.0, p};
    // As core's diff (ckpt/diff.hpp) words each difference.
    if (auto k = kind_changed.find(p); k != kind_changed.end()) {
      j["kind"] = kind_name(DiffEntry::Kind::kind_changed);
      j["detail"] = k->second->detail;
    } else if (ib == tb.end()) {
      j["kind"] = kind_name(DiffEntry::Kind::only_in_a);
      j["detail"] = described(*ia->second);
    } else if (ia == ta.end()) {
      j["kind"] = kind_name(DiffEntry::Kind::only_in_b);
      j["detail"] = described(*ib->second);
    } else if (++compared; ia->second->dtype() != ib->second->dtype()) {
      j["kind"] = kind_name(DiffEntry::Kind::dtype_changed);
      j["detail"] = std::string(name(ia->second->dtype())) + " -> " + std::string(name(ib->second->dtype()));
    } else if (ia->second->shape() != ib->second->shape()) {
      j["kind"] = kind_name(DiffEntry::Kind::shape_changed);
      j["detail"] = shape_string(ia->second->shape()) + " -> " + shape_string(ib->second->shape());
    } else {
      const Tensor& t = *ia->second;
      const auto bytes_a = a.bytes(p, t, buffer_a), bytes_b = b.bytes(p, *ib->second, buffer_b);
      // Core's comparison of the two values, on one-tensor documents over the bytes just read.
      Document da, db;
      da.add_tensor("t", Tensor::borrow(t.dtype(), t.shape(), static_cast<const void*>(bytes_a.data())));
      db.add_tensor("t", Tensor::borrow(t.dtype(), t.shape(), static_cast<const void*>(bytes_b.data())));
      const DiffReport values = diff_documents(da, db);
      r.structural = false;
      if (values.entries.empty()) {
        r.differs = false;
        j["kind"] = "same";
        j["max_abs"] = 0.0;
        j["max_rel"] = 0.0;
      } else {
        const DiffEntry& d = values.entries.front();
        j["kind"] = kind_name(d.kind);
        j["detail"] = d.detail;
        r.abs = d.max_abs_diff;
        // The change against the tensor's scale in A.
        const double scale = max_abs_value(t.dtype(), bytes_a, t.numel());
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
  return {{"a", ra.label()}, {"b", rb.label()}, {"identical", differing == 0 && other.empty()},
          {"tensors_compared", compared}, {"attributes_compared", structure.attributes_compared},
          {"tensors_differing", differing}, {"tensors", std::move(tensors)}, {"other", std::move(other)}};
}

}  // namespace ckpt::serve::ui
