#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>

#include <cmath>
#include <cstring>
#include <vector>
#include <map>

namespace ckpt {

namespace {

using Kind = DiffEntry::Kind;

// Path -> node, flattened, so the two trees can be walked as one sorted union.
struct Flat {
  std::map<std::string, const Tensor*> tensors;
  std::map<std::string, const Value*> attributes;
  std::map<std::string, bool> groups;
};

void flatten(const Group& g, const std::string& prefix, Flat& out, bool ignore_meta) {
  for (const auto& a : g.attributes()) out.attributes[join_path(prefix, a.name)] = &a.value;
  for (const auto& c : g.children()) {
    std::string p = join_path(prefix, c.name);
    if (ignore_meta && p == "meta") continue;
    if (c.is_tensor()) {
      out.tensors[p] = &c.tensor();
    } else {
      out.groups[p] = true;
      flatten(c.group(), p, out, ignore_meta);
    }
  }
}

// Compares two same-dtype, same-shape tensors' bytes; fills `e` if they differ. A complex
// tensor compares as its components, so `n` counts components.
bool compare_values(DType d, std::span<const std::byte> a, std::span<const std::byte> b, size_t n,
                    const DiffOptions& o, DiffEntry& e) {
  if (a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0)) return false;
  double max_abs = 0;
  bool beyond = false;
  size_t differing = 0;
  // A block dtype is decoded a block at a time, not once per element.
  const size_t per = block_elements(d);
  std::vector<float> da(is_block(d) ? per : 0), db(da.size());
  for (size_t i = 0; i < n; ++i) {
    if (is_block(d) && i % per == 0) {
      cast_elements(d, a.data() + i / per * block_bytes(d), DType::f32, reinterpret_cast<std::byte*>(da.data()), per);
      cast_elements(d, b.data() + i / per * block_bytes(d), DType::f32, reinterpret_cast<std::byte*>(db.data()), per);
    }
    double x = is_block(d) ? da[i % per] : element_as_double(d, a.data(), i);
    double y = is_block(d) ? db[i % per] : element_as_double(d, b.data(), i);
    if (std::isnan(x) && std::isnan(y)) continue;
    double diff = std::fabs(x - y);
    if (x == y) diff = 0;  // equal infinities
    if (std::isnan(diff)) diff = INFINITY;
    if (diff > 0 || std::signbit(x) != std::signbit(y)) ++differing;
    if (diff > max_abs) max_abs = diff;
    if (diff > o.atol + o.rtol * std::fabs(y)) beyond = true;
  }
  bool tolerant = o.atol > 0 || o.rtol > 0;
  if (tolerant && !beyond) return false;
  e.kind = Kind::values_differ;
  e.max_abs_diff = max_abs;
  e.detail = std::to_string(differing) + " of " + std::to_string(n) + " elements differ";
  return true;
}

template <class GetA, class GetB>
DiffReport diff_impl(const Document& ta, const Document& tb, const DiffOptions& o, GetA get_a, GetB get_b) {
  DiffReport r;
  Flat fa, fb;
  flatten(ta, "", fa, o.ignore_meta);
  flatten(tb, "", fb, o.ignore_meta);
  auto add = [&](Kind k, const std::string& p, std::string detail) { r.entries.push_back({k, p, std::move(detail), 0.0}); };

  for (const auto& [p, _] : fa.groups)
    if (!fb.groups.count(p)) add(fb.tensors.count(p) ? Kind::kind_changed : Kind::only_in_a, p, "group");
  for (const auto& [p, _] : fb.groups)
    if (!fa.groups.count(p) && !fa.tensors.count(p)) add(Kind::only_in_b, p, "group");

  for (const auto& [p, va] : fa.attributes) {
    r.attributes_compared++;
    auto it = fb.attributes.find(p);
    if (it == fb.attributes.end())
      add(Kind::only_in_a, p, "attribute = " + value_to_string(*va));
    else if (!value_equal(*va, *it->second))
      add(Kind::attribute_differs, p, value_to_string(*va) + " -> " + value_to_string(*it->second));
  }
  for (const auto& [p, vb] : fb.attributes)
    if (!fa.attributes.count(p)) add(Kind::only_in_b, p, "attribute = " + value_to_string(*vb));

  for (const auto& [p, a] : fa.tensors) {
    auto it = fb.tensors.find(p);
    if (it == fb.tensors.end()) {
      if (!fb.groups.count(p)) add(Kind::only_in_a, p, "tensor " + std::string(name(a->dtype())) + " " + shape_string(a->shape()));
      else add(Kind::kind_changed, p, "tensor -> group");
      continue;
    }
    const Tensor* b = it->second;
    r.tensors_compared++;
    if (a->dtype() != b->dtype()) {
      add(Kind::dtype_changed, p, std::string(name(a->dtype())) + " -> " + std::string(name(b->dtype())));
      continue;
    }
    if (a->shape() != b->shape()) {
      add(Kind::shape_changed, p, shape_string(a->shape()) + " -> " + shape_string(b->shape()));
      continue;
    }
    DiffEntry e{Kind::values_differ, p, "", 0.0};
    if (compare_values(a->dtype(), get_a(p, *a), get_b(p, *b), a->numel() * (is_complex(a->dtype()) ? 2 : 1), o, e)) r.entries.push_back(e);
  }
  for (const auto& [p, b] : fb.tensors)
    if (!fa.tensors.count(p) && !fa.groups.count(p))
      add(Kind::only_in_b, p, "tensor " + std::string(name(b->dtype())) + " " + shape_string(b->shape()));
  return r;
}

}  // namespace

DiffReport diff(const fs::path& a, const fs::path& b, const DiffOptions& options) {
  LoadOptions lo;
  lo.registry = options.registry;
  auto ra = open(a, lo);
  auto rb = open(b, lo);
  std::vector<std::byte> ba, bb;
  std::optional<Tensor> ma, mb;
  // One tensor of each file in memory at a time (or mapped).
  auto getter = [](std::shared_ptr<FormatReader>& r, std::vector<std::byte>& buf, std::optional<Tensor>& m) {
    return [&r, &buf, &m](const std::string& p, const Tensor& t) -> std::span<const std::byte> {
      m = r->map(p);
      if (m) return m->bytes();
      buf.resize(t.nbytes());
      r->read_into(p, buf);
      return buf;
    };
  };
  return diff_impl(ra->tree(), rb->tree(), options, getter(ra, ba, ma), getter(rb, bb, mb));
}

DiffReport diff_documents(const Document& a, const Document& b, const DiffOptions& options) {
  auto get = [](const std::string&, const Tensor& t) { return t.bytes(); };
  return diff_impl(a, b, options, get, get);
}

}  // namespace ckpt
