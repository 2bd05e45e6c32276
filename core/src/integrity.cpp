#include <ckpt/checkpoint.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/sdk_records.hpp>

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <map>
#include <optional>

namespace ckpt {

uint64_t hash_bytes(std::span<const std::byte> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string hash_hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

const char* kIntegrityPath = "meta/integrity";

// An exact, unambiguous rendering of a value: doubles by their bits, strings length-prefixed.
void canonical_value(std::string& out, const Value& v) {
  out += value_type_name(value_type(v));
  out += ' ';
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        auto str = [&](const std::string& s) { out += std::to_string(s.size()) + ":" + s; };
        auto dbl = [&](double d) { out += hash_hex(std::bit_cast<uint64_t>(d)); };
        if constexpr (std::is_same_v<T, bool>) out += x ? "1" : "0";
        else if constexpr (std::is_same_v<T, int64_t>) out += std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) dbl(x);
        else if constexpr (std::is_same_v<T, std::string>) str(x);
        else {
          out += std::to_string(x.size()) + "[";
          for (const auto& e : x) {
            if constexpr (std::is_same_v<T, std::vector<bool>>) out += e ? "1" : "0";
            else if constexpr (std::is_same_v<T, std::vector<int64_t>>) out += std::to_string(e);
            else if constexpr (std::is_same_v<T, std::vector<double>>) dbl(e);
            else str(e);
            out += ',';
          }
          out += ']';
        }
      },
      v);
}

// ckpt 0.1 kept its signature in the file, outside the manifest it signed.
constexpr const char* kLegacySignaturePath = "meta/signature";

void collect(const Group& g, const std::string& prefix, std::vector<std::string>& lines,
             const std::map<std::string, std::string>& hashes, ManifestEncoding enc) {
  const bool v1 = enc == ManifestEncoding::v1;
  auto path_text = [&](const std::string& p) { return v1 ? p : std::to_string(p.size()) + ":" + p; };
  for (const auto& a : g.attributes()) {
    std::string line = "A " + path_text(join_path(prefix, a.name)) + " ";
    canonical_value(line, a.value);
    lines.push_back(std::move(line));
  }
  for (const auto& c : g.children()) {
    std::string p = join_path(prefix, c.name);
    if (p == kIntegrityPath || (v1 && p == kLegacySignaturePath)) continue;
    if (c.is_group()) {
      lines.push_back("G " + path_text(p));
      collect(c.group(), p, lines, hashes, enc);
    } else {
      auto it = hashes.find(p);
      lines.push_back("T " + path_text(p) + " " + std::string(name(c.tensor().dtype())) + " " +
                      shape_string(c.tensor().shape()) + " " + (it == hashes.end() ? "-" : it->second));
    }
  }
}

}  // namespace

std::string canonical_manifest(const Document& doc,
                               const std::vector<std::pair<std::string, std::string>>& tensor_hashes,
                               ManifestEncoding encoding) {
  std::map<std::string, std::string> hashes(tensor_hashes.begin(), tensor_hashes.end());
  std::vector<std::string> lines;
  collect(doc, "", lines, hashes, encoding);
  // Sorted, because some formats (HDF5) list members by name rather than in creation order.
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

void add_integrity(Document& doc) {
  std::vector<std::pair<std::string, std::string>> hashes;
  doc.group("meta").erase("integrity");
  doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
    hashes.emplace_back(path, hash_hex(hash_bytes(t.bytes())));
  });
  write_integrity(doc, hashes);
}

void write_integrity(Document& doc, const std::vector<std::pair<std::string, std::string>>& hashes) {
  Group& meta = doc.group("meta");
  meta.erase("integrity");
  meta.add_group("integrity");
  fill_integrity(doc, hashes);
}

void fill_integrity(Document& doc, const std::vector<std::pair<std::string, std::string>>& hashes) {
  Group* meta = doc.find_group("meta");
  Group* integ_ptr = meta ? meta->find_group("integrity") : nullptr;
  if (!integ_ptr) throw Error("fill_integrity: the document has no meta/integrity group");
  Group& integ = *integ_ptr;
  const std::string manifest = canonical_manifest(doc, hashes);  // meta/integrity is not in it
  for (const char* a : {"algorithm", "paths", "digests", "manifest", "manifest_encoding"}) integ.erase_attribute(a);
  std::vector<std::string> paths, digests;
  for (auto& [p, h] : hashes) {
    paths.push_back(p);
    digests.push_back(h);
  }
  integ.set("algorithm", kHashAlgorithm);
  integ.set("paths", std::move(paths));
  integ.set("digests", std::move(digests));
  integ.set("manifest", hash_hex(XXH3_64bits(manifest.data(), manifest.size())));
  integ.set("manifest_encoding", kManifestEncodingV2);
}

namespace {

struct Recorded {
  bool present = false;
  std::map<std::string, std::string> digests;
  std::string manifest;
  ManifestEncoding encoding = ManifestEncoding::v1;
  std::vector<std::string> problems;
};

bool is_hex_digest(const std::string& s) {
  return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Recorded recorded(const Document& tree) {
  Recorded r;
  const Group* g = tree.find_group_path(kIntegrityPath);
  if (!g) return r;
  r.present = true;
  auto str = [&](const char* n) -> const std::string* {
    const Value* v = g->attribute(n);
    return v ? std::get_if<std::string>(v) : nullptr;
  };
  auto strs = [&](const char* n) -> const std::vector<std::string>* {
    const Value* v = g->attribute(n);
    return v ? std::get_if<std::vector<std::string>>(v) : nullptr;
  };
  const std::string* alg = str("algorithm");
  const auto* paths = strs("paths");
  const auto* digests = strs("digests");
  const std::string* manifest = str("manifest");
  if (!alg || *alg != kHashAlgorithm) {
    r.problems.push_back(std::string(kIntegrityPath) + "/algorithm: expected \"" + kHashAlgorithm + "\"");
    return r;
  }
  if (!paths || !digests || paths->size() != digests->size() || !manifest) {
    r.problems.push_back(std::string(kIntegrityPath) + ": paths, digests and manifest are damaged");
    return r;
  }
  // Nothing may ride along unchecked in the record itself: it is left out of its own manifest.
  const std::string where = kIntegrityPath;
  for (const auto& a : g->attributes())
    if (a.name != "algorithm" && a.name != "paths" && a.name != "digests" && a.name != "manifest" &&
        a.name != "manifest_encoding")
      r.problems.push_back(where + "/" + a.name + ": unexpected attribute (not covered by the hashes)");
  for (const auto& c : g->children())
    r.problems.push_back(where + "/" + c.name + ": unexpected member (not covered by the hashes)");
  if (const Value* e = g->attribute("manifest_encoding")) {
    const std::string* s = std::get_if<std::string>(e);
    if (!s || *s != kManifestEncodingV2)
      r.problems.push_back(where + "/manifest_encoding: expected \"" + std::string(kManifestEncodingV2) + "\"");
    r.encoding = ManifestEncoding::v2;
  }
  for (size_t i = 0; i < paths->size(); ++i) {
    if (!is_hex_digest((*digests)[i]))
      r.problems.push_back(where + "/digests[" + std::to_string(i) + "]: not 16 hex digits");
    if (!r.digests.emplace((*paths)[i], (*digests)[i]).second)
      r.problems.push_back(where + "/paths: '" + (*paths)[i] + "' recorded twice");
  }
  if (!is_hex_digest(*manifest)) r.problems.push_back(where + "/manifest: not 16 hex digits");
  r.manifest = *manifest;
  return r;
}

}  // namespace

std::map<std::string, std::string> recorded_digests(const Document& doc) { return recorded(doc).digests; }

namespace {

// Compares what was hashed with what was recorded.
void finish_report(VerifyReport& rep, const Document& tree, const Recorded& rec,
                   const std::vector<std::pair<std::string, std::string>>& actual) {
  rep.problems.insert(rep.problems.end(), rec.problems.begin(), rec.problems.end());
  if (!rec.problems.empty()) return;
  std::map<std::string, bool> seen;
  for (const auto& [p, h] : actual) {
    auto it = rec.digests.find(p);
    if (it == rec.digests.end())
      rep.problems.push_back(p + ": tensor has no recorded hash");
    else if (it->second != h)
      rep.problems.push_back(p + ": data hash " + h + " does not match the recorded " + it->second);
    seen[p] = true;
  }
  for (const auto& [p, h] : rec.digests)
    if (!seen.count(p)) rep.problems.push_back(p + ": recorded tensor is missing");
  std::string manifest = canonical_manifest(tree, actual, rec.encoding);
  std::string got = hash_hex(XXH3_64bits(manifest.data(), manifest.size()));
  if (got != rec.manifest)
    rep.problems.push_back("manifest digest " + got + " does not match the recorded " + rec.manifest +
                           " (names, shapes, dtypes or attributes changed)");
}

// Why a tree without meta/integrity must not pass as "nothing to check", if it must not:
// ckpt::save records hashes in every checkpoint, and a record of hashes found under another
// path means a name on the way to it was damaged (one flipped byte of "meta" does that).
std::optional<std::string> missing_integrity(const Document& tree) {
  std::optional<std::string> found;
  std::function<void(const Group&, const std::string&)> look = [&](const Group& g, const std::string& prefix) {
    for (const auto& c : g.children()) {
      if (found || !c.is_group()) continue;
      const std::string p = join_path(prefix, c.name);
      const Value* alg = c.group().attribute("algorithm");
      const std::string* a = alg ? std::get_if<std::string>(alg) : nullptr;
      if (a && *a == kHashAlgorithm && c.group().attribute("digests") && c.group().attribute("manifest"))
        found = p + ": a record of hashes outside " + kIntegrityPath + " (a damaged name?)";
      else
        look(c.group(), p);
    }
  };
  look(tree, "");
  // ckpt::save writes meta/created and meta/integrity together; readers that map another tool's
  // file (a torch checkpoint dict, an exported ONNX model) onto the schema write neither.
  const Group* meta = tree.find_group("meta");
  if (!found && is_checkpoint(tree) && meta && meta->attribute("created"))
    found = std::string(kIntegrityPath) + ": missing, though every checkpoint ckpt saves records its hashes";
  return found;
}

}  // namespace

std::vector<std::string> external_references(const Document& doc) {
  const Group* meta = doc.find_group("meta");
  const Value* v = meta ? meta->attribute(sdk::kExternalReferencesRecord) : nullptr;
  if (!v) return {};
  if (const auto* list = std::get_if<std::vector<std::string>>(v)) return *list;
  return {std::string("meta/@") + sdk::kExternalReferencesRecord + " (a record that is not a list of strings)"};
}

VerifyReport verify(FormatReader& reader) {
  VerifyReport rep;
  const Document& tree = reader.tree();
  rep.not_covered = external_references(tree);
  if (const auto& self_check = reader.self_check()) {
    // A sharded checkpoint: each chunk against the index's hash (the whole tensors' hashes
    // would need them assembled).
    rep.has_integrity = true;
    rep.problems = self_check(rep.tensors_checked, rep.bytes_checked);
    return rep;
  }
  Recorded rec = recorded(tree);
  rep.has_integrity = rec.present;
  std::vector<std::pair<std::string, std::string>> actual;
  reader.for_each_tensor_bytes([&](const std::string& path, const Tensor&, std::span<const std::byte> bytes) {
    actual.emplace_back(path, hash_hex(hash_bytes(bytes)));
    rep.tensors_checked++;
    rep.bytes_checked += bytes.size();
  });
  if (rec.present) finish_report(rep, tree, rec, actual);
  else if (auto why = missing_integrity(tree)) rep.problems.push_back(*why);
  return rep;
}

std::vector<std::string> record_problems(const Document& tree) {
  VerifyReport rep;
  Recorded rec = recorded(tree);
  if (!rec.present) return {};
  // Each tensor as its record says, which the caller checks as it reads the data: what is left
  // to find here is the record itself, and any name, shape, dtype or attribute changed.
  std::vector<std::pair<std::string, std::string>> as_recorded;
  tree.for_each_tensor([&](const std::string& path, const Tensor&) {
    auto it = rec.digests.find(path);
    as_recorded.emplace_back(path, it == rec.digests.end() ? std::string("(none)") : it->second);
  });
  finish_report(rep, tree, rec, as_recorded);
  return rep.problems;
}

VerifyReport verify_document(const Document& doc) {
  VerifyReport rep;
  Recorded rec = recorded(doc);
  rep.has_integrity = rec.present;
  std::vector<std::pair<std::string, std::string>> actual;
  doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
    actual.emplace_back(path, hash_hex(hash_bytes(t.bytes())));
    rep.tensors_checked++;
    rep.bytes_checked += t.nbytes();
  });
  if (rec.present) finish_report(rep, doc, rec, actual);
  else if (auto why = missing_integrity(doc)) rep.problems.push_back(*why);
  return rep;
}

}  // namespace ckpt
