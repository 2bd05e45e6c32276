// The conversion matrix: one document holding every value kind and dtype, converted into each
// writable format A and from there into each writable format B (every ordered pair, A = B
// included), read back and compared with the original. What a conversion loses must be what
// convert named (a loss) or refused: a difference nobody named fails the test. The table of
// what each pair keeps is docs/conversion-matrix.md, written by this test (CKPT_UPDATE_DOCS=1)
// and otherwise checked to be current.
#include <ckpt/convert.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <gtest/gtest.h>

#include "scratch.hpp"

#include <bit>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

const fs::path kDocs = CKPT_DOCS_DIR;

Tensor random_tensor(DType d, Shape shape, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(d, std::move(shape));
  for (auto& b : t.mutable_bytes()) b = static_cast<std::byte>(rng());
  if (d == DType::boolean)
    for (auto& b : t.mutable_bytes()) b &= std::byte{1};
  // NaN payloads are not what this table is about (docs/formats/* say which formats keep them).
  if (d == DType::f32)
    for (float& f : t.mutable_data<float>()) f = static_cast<float>(rng() % 2000) / 8 - 125;
  if (d == DType::f64 || d == DType::c128)
    for (double& f : t.mutable_data<double>()) f = static_cast<double>(rng() % 2000) / 8 - 125;
  if (d == DType::c64)
    for (float& f : t.mutable_data<float>()) f = static_cast<float>(rng() % 2000) / 8 - 125;
  if (d == DType::f8_e4m3fn || d == DType::f8_e5m2)
    for (auto& b : t.mutable_bytes()) b &= std::byte{0xbf};  // finite: the top exponent bit clear
  return t;
}

// Every value kind, at the root, in meta, and in nested groups; every dtype; a scalar, an
// empty tensor; tied tensors; an empty group.
Document every_kind() {
  std::mt19937_64 rng(11);
  Document doc;
  Group& meta = doc.group("meta");
  meta.set("format", "pt").set("note", "caf\u00e9");
  doc.set("title", "matrix").set("epoch", 3).set("lr", 0.001).set("flag", Value(true));
  Group& values = doc.group("values");
  values.set("int", std::numeric_limits<int64_t>::min())
      .set("float", -0.0)
      .set("inf", std::numeric_limits<double>::infinity())
      .set("nan", std::numeric_limits<double>::quiet_NaN())
      .set("bool", Value(false))
      .set("text", "line\nbreak \"quoted\"")
      .set("ints", std::vector<int64_t>{1, -2, 1LL << 60})
      .set("floats", std::vector<double>{0.5, -1.5, 1e300})
      .set("bools", std::vector<bool>{true, false})
      .set("strings", std::vector<std::string>{"a", "\u03b2", ""})
      .set("empty_ints", std::vector<int64_t>{});
  values.group("nested").group("deeper").set("depth", 3);
  Group& state = doc.group("model").group("state");
  for (int k = static_cast<int>(kFirstDType); k <= static_cast<int>(kLastElementDType); ++k) {
    const auto d = static_cast<DType>(k);
    state.add_tensor(std::string("t_") + std::string(name(d)), random_tensor(d, {2, 3}, rng));
  }
  state.add_tensor("layer.0.weight", random_tensor(DType::f32, {4, 2}, rng));
  // Tied weights (one storage in torch, one copy in safetensors) and an equal untied tensor.
  const Tensor embed = random_tensor(DType::f32, {5, 2}, rng);
  for (const char* n : {"embed.weight", "head.weight", "copy.weight"}) state.add_tensor(n, embed);
  meta.set("tensor_aliases", std::vector<std::string>{"model/state/head.weight", "model/state/embed.weight"});
  state.add_tensor("scalar", random_tensor(DType::f32, {}, rng));
  state.add_tensor("empty", random_tensor(DType::f32, {0, 3}, rng));
  doc.group("optimizer").set("type", "sgd").group("state").group("layer.0.weight").add_tensor(
      "momentum_buffer", random_tensor(DType::f32, {4, 2}, rng));
  doc.add_tensor("root_tensor", random_tensor(DType::i64, {3}, rng));
  doc.add_group("empty_group");
  return doc;
}

// The first path component or two: enough to say where in the document something differs.
std::string area(const std::string& path) {
  std::string p = path;
  if (const size_t at = p.find('@'); at != std::string::npos) p = p.substr(0, at) + (at ? "/" : "") + "@";
  const size_t a = p.find('/');
  if (a == std::string::npos) return p;
  const size_t b = p.find('/', a + 1);
  return p.substr(0, b);
}

size_t attribute_count(const Group& g) {
  size_t n = g.attributes().size();
  for (const auto& c : g.children())
    if (c.is_group()) n += attribute_count(c.group());
  return n;
}

bool named_by(const std::string& path, const std::vector<Loss>& losses) {
  for (const Loss& l : losses) {
    if (l.path == path || path.rfind(l.path + "/", 0) == 0 || path.rfind(l.path + "@", 0) == 0) return true;
    // An attribute's loss names group/name; a diff names group@name or group/name.
    std::string p = path;
    if (const size_t at = p.rfind('@'); at != std::string::npos) p[at] = '/';
    if (l.path == p || (p.size() > 1 && p[0] == '/' && l.path == p.substr(1))) return true;
  }
  return false;
}

struct Cell {
  bool refused = false;
  std::string why;                       // refused: the first line of the error
  std::map<std::string, size_t> losses;  // what, counted
  std::vector<std::string> silent;       // differences nobody named
};

std::string summary(const Cell& c) {
  if (c.refused) return "refused";
  if (c.losses.empty()) return "exact";
  size_t n = 0;
  for (const auto& [what, count] : c.losses) n += count;
  return std::to_string(n) + " named";
}

}  // namespace

TEST(ConversionMatrix, EveryPairKeepsEverythingOrNamesWhatItLoses) {
  ckpt_test::TempDir tmp("matrix");
  const Document doc = every_kind();
  const fs::path src = tmp.path / "source.msgpack";  // msgpack holds every document exactly
  write_document(doc, src);
  std::vector<Format> writable;
  for (const Format& f : Registry::global().formats())
    if (f.info().can(CKPT_CAP_WRITE) && !f.info().extensions.empty()) writable.push_back(f);
  ASSERT_GE(writable.size(), 6u);
  std::map<std::pair<std::string, std::string>, Cell> cells;
  std::map<std::string, std::vector<Loss>> private_to;  // what only ckpt reads back from each format
  std::set<std::string> all_losses;
  for (const Format& a : writable) {
    for (const Format& b : writable) {
      SCOPED_TRACE(a.name() + " -> " + b.name());
      Cell& cell = cells[{a.name(), b.name()}];
      const fs::path pa = tmp.path / ("a_" + a.name() + a.info().extensions.front());
      const fs::path pb = tmp.path / ("b_" + a.name() + "_" + b.name() + b.info().extensions.front());
      ConvertOptions o;
      o.allow_lossy = true;
      o.fsync = false;
      std::vector<Loss> named;
      try {
        o.to = a.name();
        const ConvertReport ra = convert(src, pa, o);
        for (const Loss& l : ra.losses) named.push_back(l);
        if (b.name() == a.name()) private_to[a.name()] = ra.private_contents;
        o.to = b.name();
        for (const Loss& l : convert(pa, pb, o).losses) named.push_back(l);
      } catch (const UnsupportedError& e) {
        // A format that cannot hold part of the document at all refuses it, naming what.
        cell.refused = true;
        cell.why = std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
        continue;
      }
      for (const Loss& l : named) {
        std::string what = l.what;
        // One line per kind of loss: the part of a message before its parenthesis.
        if (const size_t p = what.find(" ("); p != std::string::npos && what.rfind("stored as", 0) != 0) what = what.substr(0, p);
        cell.losses[area(l.path) + ": " + what]++;
        all_losses.insert(area(l.path) + ": " + what);
      }
      DiffOptions exact;
      exact.ignore_meta = false;
      const Document back = read_document(pb);
      const DiffReport report = diff_documents(doc, back, exact);
      EXPECT_EQ(report.tensors_compared, doc.tensor_count());
      EXPECT_EQ(report.attributes_compared, attribute_count(doc));
      for (const DiffEntry& e : report.entries) {
        // ckpt's own records of the conversions, and a format's own metadata, are not losses.
        if (e.path.rfind("meta/conversion", 0) == 0 || e.path.rfind("meta/integrity", 0) == 0) continue;
        if (e.kind == DiffEntry::Kind::only_in_b && e.path.rfind("meta", 0) == 0) continue;
        if (!named_by(e.path, named)) cell.silent.push_back(e.path + ": " + e.detail);
      }
      for (const std::string& s : cell.silent) ADD_FAILURE() << "lost without a word: " << s;
    }
  }

  // The table.
  std::ostringstream md;
  md << "# Conversion matrix\n\n"
     << "Generated by `tests/matrix/test_conversion_matrix.cpp` (run it with `CKPT_UPDATE_DOCS=1` to rewrite this\n"
     << "file; otherwise it fails when the file is stale). One document holding every value kind (bool, int64,\n"
     << "float64 with -0, inf and NaN, strings, arrays of each, an empty array), nested and empty groups, root\n"
     << "attributes, `meta` strings and a tensor of every dtype (with a scalar and an empty one) is converted\n"
     << "from msgpack into format A, then into format B, read back and compared with the original. Each cell\n"
     << "says what reaches B: `exact`, the number of things `ckpt convert` named as lost (it refuses them without\n"
     << "`--allow-lossy`), or `refused`. Nothing is lost without being named: the test fails on any difference\n"
     << "that no loss names.\n\n";
  md << "| A \\ B |";
  for (const Format& b : writable) md << " " << b.name() << " |";
  md << "\n|---|";
  for (size_t i = 0; i < writable.size(); ++i) md << "---|";
  md << "\n";
  for (const Format& a : writable) {
    md << "| **" << a.name() << "** |";
    for (const Format& b : writable) md << " " << summary(cells[{a.name(), b.name()}]) << " |";
    md << "\n";
  }
  md << "\n## What is named, per pair\n\n";
  for (const Format& a : writable)
    for (const Format& b : writable) {
      const Cell& c = cells[{a.name(), b.name()}];
      if (!c.refused && c.losses.empty()) continue;
      md << "- **" << a.name() << " -> " << b.name() << "**: ";
      if (c.refused) {
        md << "refused: " << c.why << "\n";
        continue;
      }
      bool first = true;
      for (const auto& [what, count] : c.losses) {
        md << (first ? "" : "; ") << what << (count > 1 ? " (" + std::to_string(count) + ")" : "");
        first = false;
      }
      md << "\n";
    }
  md << "\n## What readers other than ckpt see\n\n"
     << "ckpt keeps what a format has no place for in a document entry of its own (docs/formats/*), which\n"
     << "ckpt reads back and other tools ignore. Written into each format, the document above shows other\n"
     << "readers (torch.load, h5py, a safetensors or ONNX library) everything but:\n\n";
  for (const Format& f : writable) {
    const auto& p = private_to[f.name()];
    md << "- **" << f.name() << "**: ";
    if (p.empty()) md << "nothing: every member is in the format's own structures";
    for (size_t i = 0; i < p.size(); ++i) md << (i ? "; " : "") << p[i].path << " (" << p[i].what << ")";
    md << "\n";
  }
  const std::string table = md.str();
  const fs::path doc_path = kDocs / "conversion-matrix.md";
  if (std::getenv("CKPT_UPDATE_DOCS")) {
    std::ofstream(doc_path) << table;
    return;
  }
  std::ifstream in(doc_path);
  const std::string current{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (current != table) {
    const fs::path fresh = fs::temp_directory_path() / "conversion-matrix.md";
    std::ofstream(fresh) << table;
    ADD_FAILURE() << doc_path << " is stale: the matrix is now " << fresh << " (CKPT_UPDATE_DOCS=1 rewrites it)";
  }
}
