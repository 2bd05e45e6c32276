#include "sharded_index.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/sdk_value.hpp>
#include <ckpt/skeleton_text.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

namespace ckpt::sharded {

uint64_t Box::elements() const {
  uint64_t n = 1;
  for (int64_t s : sizes) n *= static_cast<uint64_t>(s);
  return n;
}

uint64_t Item::nbytes() const { return storage_bytes(dtype, box.elements()); }

}  // namespace ckpt::sharded

namespace ckpt::sharded::detail {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw FormatError(where + ": " + what); }

// A plain file name: an index never makes ckpt read outside its folder.
bool plain_file_name(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos && f.find('\\') == std::string::npos &&
         f.find('\0') == std::string::npos && f[0] != '.';
}

std::vector<int64_t> dims(const json& j, const std::string& where, const char* what) {
  if (!j.is_array() || j.size() > 64) bad(where, std::string(what) + " is not a list of at most 64 integers");
  std::vector<int64_t> out;
  for (const json& d : j) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) bad(where, std::string(what) + " holds a value that is not a non-negative integer");
    out.push_back(d.get<int64_t>());
  }
  return out;
}

std::string box_text(const Box& b) {
  std::string s = "[";
  for (size_t i = 0; i < b.offsets.size(); ++i)
    s += (i ? ", " : "") + std::to_string(b.offsets[i]) + ":" + std::to_string(b.offsets[i] + b.sizes[i]);
  return s + "]";
}

}  // namespace

json parse_json(const std::string& text, const std::string& source, int max_nesting, const char* nested_what) {
  if (auto nul = sdk::json_nul_problem(text); !nul.empty()) bad(source, "not JSON: " + nul);
  if (sdk::json_nesting(text) > max_nesting) bad(source, std::string("nested deeper than ") + nested_what);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad(source, "not a JSON object");
  return j;
}

const json& json_member(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) bad(where, std::string("no \"") + key + "\"");
  return *it;
}

std::string json_string(const json& j, const char* key, const std::string& where) {
  const json& v = json_member(j, key, where);
  if (!v.is_string()) bad(where, std::string("\"") + key + "\" is not a string");
  return v.get<std::string>();
}

uint64_t json_count(const json& j, const char* key, const std::string& where) {
  const json& v = json_member(j, key, where);
  if (!v.is_number_unsigned()) bad(where, std::string("\"") + key + "\" is not a non-negative integer");
  return v.get<uint64_t>();
}

json box_json(const Box& box) { return json{{"offsets", box.offsets}, {"sizes", box.sizes}}; }

Box parse_box(const json& j, const std::string& where) {
  if (!j.is_object()) bad(where, "a chunk is not an object");
  Box b{dims(json_member(j, "offsets", where), where, "offsets"), dims(json_member(j, "sizes", where), where, "sizes")};
  if (b.offsets.size() != b.sizes.size()) bad(where, "offsets and sizes differ in length");
  return b;
}

void check_cover(const Shape& shape, DType dtype, const std::vector<const Box*>& boxes, const std::string& what) {
  if (boxes.empty()) bad(what, "no chunk");
  if (boxes.size() > kMaxChunks)
    bad(what, std::to_string(boxes.size()) + " chunks (at most " + std::to_string(kMaxChunks) + " per tensor)");
  uint64_t total = 1, covered = 0;
  for (int64_t d : shape) {
    if (d < 0) bad(what, "a negative dimension");
    if (d != 0 && total > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) bad(what, "more elements than 2^64");
    total *= static_cast<uint64_t>(d);
  }
  for (const Box* b : boxes) {
    if (b->offsets.size() != shape.size())
      bad(what, "chunk " + box_text(*b) + " has rank " + std::to_string(b->offsets.size()) + ", the tensor " + std::to_string(shape.size()));
    for (size_t i = 0; i < shape.size(); ++i)
      if (b->offsets[i] < 0 || b->sizes[i] < 0 || b->offsets[i] > shape[i] || b->sizes[i] > shape[i] - b->offsets[i])
        bad(what, "chunk " + box_text(*b) + " lies outside the tensor's shape " + shape_string(shape));
    if (is_block(dtype) && b->sizes != shape)
      bad(what, "chunk " + box_text(*b) + " of a " + std::string(name(dtype)) + " tensor (block dtypes are kept whole)");
    covered += b->elements();
  }
  // Disjoint boxes whose sizes add up to the tensor's cover it exactly. Disjoint: a sweep along
  // one dimension compares only boxes whose ranges there meet; the dimension is the one where
  // that makes the fewest comparisons (counted first, n log n each), and a set of boxes that
  // needs more than kMaxComparisons everywhere is refused rather than checked for minutes.
  std::vector<const Box*> live;
  for (const Box* b : boxes)
    if (b->elements() > 0) live.push_back(b);
  if (!shape.empty() && live.size() > 1) {
    constexpr uint64_t kMaxComparisons = uint64_t{1} << 26;
    size_t axis = 0;
    uint64_t fewest = std::numeric_limits<uint64_t>::max();
    for (size_t i = 0; i < shape.size(); ++i) {
      std::vector<int64_t> starts;
      for (const Box* b : live) starts.push_back(b->offsets[i]);
      std::sort(starts.begin(), starts.end());
      uint64_t cost = 0;
      for (const Box* b : live) {
        // Boxes starting inside [offset, end) on this axis, other than b itself.
        const auto lo = std::lower_bound(starts.begin(), starts.end(), b->offsets[i]);
        const auto hi = std::lower_bound(starts.begin(), starts.end(), b->offsets[i] + b->sizes[i]);
        cost += static_cast<uint64_t>(hi - lo);
      }
      if (cost < fewest) fewest = cost, axis = i;
    }
    if (fewest > kMaxComparisons)
      bad(what, std::to_string(live.size()) + " chunks laid out so that checking they do not overlap would take more than " +
                    std::to_string(kMaxComparisons) + " comparisons");
    std::sort(live.begin(), live.end(), [axis](const Box* a, const Box* b) { return a->offsets[axis] < b->offsets[axis]; });
    for (size_t a = 0; a < live.size(); ++a)
      for (size_t b = a + 1; b < live.size() && live[b]->offsets[axis] < live[a]->offsets[axis] + live[a]->sizes[axis]; ++b) {
        bool overlap = true;
        for (size_t i = 0; i < shape.size() && overlap; ++i)
          overlap = live[a]->offsets[i] < live[b]->offsets[i] + live[b]->sizes[i] &&
                    live[b]->offsets[i] < live[a]->offsets[i] + live[a]->sizes[i];
        if (overlap) bad(what, "chunks " + box_text(*live[a]) + " and " + box_text(*live[b]) + " overlap");
      }
  } else if (shape.empty() && boxes.size() > 1) {
    bad(what, "a scalar in " + std::to_string(boxes.size()) + " chunks");
  }
  if (covered != total)
    bad(what, "the chunks hold " + std::to_string(covered) + " of the tensor's " + std::to_string(total) + " elements");
}

std::string chunk_name(const std::string& path, const Box& box, const Shape& shape) {
  if (box.sizes == shape) return path;
  std::string s = path + "~";
  for (size_t i = 0; i < box.offsets.size(); ++i) s += (i ? "_" : "") + std::to_string(box.offsets[i]);
  return s;
}

std::string index_text(const Index& index) {
  json j;
  j["format"] = kIndexFormat;
  j["version"] = kIndexVersion;
  j["shard_format"] = index.shard_format;
  j["world"] = index.world;
  j["shards"] = json::array();
  for (const auto& [file, bytes] : index.shards) j["shards"].push_back({{"file", file}, {"bytes", bytes}});
  j["document"] = json::parse(skeleton_text(index.document, kIndexFormat, kIndexVersion, [](const std::string&) { return std::string(); }));
  j["tensors"] = json::array();
  for (const IndexTensor& t : index.tensors) {
    json chunks = json::array();
    for (const IndexChunk& c : t.chunks) {
      json cj = box_json(c.box);
      cj["shard"] = c.shard;
      cj["name"] = c.name;
      cj["xxh3"] = c.xxh3;
      chunks.push_back(std::move(cj));
    }
    j["tensors"].push_back({{"path", t.path}, {"dtype", std::string(name(t.dtype))}, {"shape", t.shape}, {"chunks", std::move(chunks)}});
  }
  try {
    return j.dump(1) + "\n";
  } catch (const json::type_error& e) {
    throw UnsupportedError(std::string("a sharded checkpoint's index is JSON, which cannot hold a tensor path that is not UTF-8: ") +
                           e.what());
  }
}

Index parse_index(const std::string& text, const std::string& source) {
  // The document's skeleton nests three JSON levels per group, at most 512 groups deep.
  const json j = parse_json(text, source, 3 * 512 + 16, "an index is");
  if (json_string(j, "format", source) != kIndexFormat) bad(source, "\"format\" is not \"" + std::string(kIndexFormat) + "\"");
  if (const json& v = json_member(j, "version", source); !v.is_number_integer() || v.get<int64_t>() != kIndexVersion)
    throw UnsupportedError(source + ": index version " + v.dump().substr(0, 32) + " (this ckpt reads version " +
                           std::to_string(kIndexVersion) + ")");
  Index index;
  index.shard_format = json_string(j, "shard_format", source);
  index.world = json_count(j, "world", source);
  const json& shards = json_member(j, "shards", source);
  if (!shards.is_array() || shards.empty()) bad(source, "\"shards\" is not a non-empty list");
  if (shards.size() > kMaxChunks) bad(source, std::to_string(shards.size()) + " shards (at most " + std::to_string(kMaxChunks) + ")");
  std::set<std::string> files;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string where = source + ": shards[" + std::to_string(k) + "]";
    std::string file = json_string(shards[k], "file", where);
    if (!plain_file_name(file)) bad(where, "'" + file.substr(0, 200) + "' is not a file name inside the checkpoint's folder");
    if (!files.insert(file).second) bad(where, "'" + file + "' is named twice");
    index.shards.emplace_back(std::move(file), json_count(shards[k], "bytes", where));
  }
  std::vector<SkeletonTensor> listed;
  index.document = parse_skeleton_text(json_member(j, "document", source).dump(), kIndexFormat, kIndexVersion, listed,
                                       source + ": document");
  std::map<std::string, const SkeletonTensor*> by_path;
  for (const SkeletonTensor& t : listed) by_path.emplace(t.path, &t);
  size_t all_chunks = 0;
  const json& tensors = json_member(j, "tensors", source);
  if (!tensors.is_array()) bad(source, "\"tensors\" is not a list");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const json& tj = tensors[i];
    std::string where = source + ": tensors[" + std::to_string(i) + "]";
    IndexTensor t;
    t.path = json_string(tj, "path", where);
    where += " ('" + t.path.substr(0, 200) + "')";
    try {
      t.dtype = dtype_from_name(json_string(tj, "dtype", where));
    } catch (const Error& e) {
      bad(where, e.what());
    }
    t.shape = dims(json_member(tj, "shape", where), where, "shape");
    const json& chunks = json_member(tj, "chunks", where);
    if (!chunks.is_array()) bad(where, "\"chunks\" is not a list");
    std::vector<const Box*> boxes;
    t.chunks.reserve(chunks.size());
    for (size_t c = 0; c < chunks.size(); ++c) {
      const std::string cw = where + ": chunks[" + std::to_string(c) + "]";
      IndexChunk ch;
      ch.box = parse_box(chunks[c], cw);
      ch.shard = json_count(chunks[c], "shard", cw);
      if (ch.shard >= index.shards.size()) bad(cw, "shard " + std::to_string(ch.shard) + " is not one of the " + std::to_string(index.shards.size()));
      ch.name = json_string(chunks[c], "name", cw);
      ch.xxh3 = json_string(chunks[c], "xxh3", cw);
      // The chunked reader checks a chunk only when it has a hash, and a rank resuming its
      // ZeRO-1 rows relies on that check: an empty or malformed hash must not turn it off.
      if (ch.xxh3.size() != 16 ||
          !std::all_of(ch.xxh3.begin(), ch.xxh3.end(), [](char x) { return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'f'); }))
        bad(cw, "chunk '" + ch.name.substr(0, 200) + "': \"xxh3\" is '" + ch.xxh3.substr(0, 40) +
                    "', not 16 lowercase hex digits");
      t.chunks.push_back(std::move(ch));
    }
    if ((all_chunks += t.chunks.size()) > kMaxIndexChunks)
      bad(source, "more than " + std::to_string(kMaxIndexChunks) + " chunks");
    const auto d = by_path.find(t.path);
    if (d == by_path.end()) bad(where, "not a tensor of the document, or listed twice");
    if (d->second->listed->dtype() != t.dtype || d->second->listed->shape() != t.shape)
      bad(where, "is " + std::string(name(t.dtype)) + " " + shape_string(t.shape) + ", the document lists it as " +
                     std::string(name(d->second->listed->dtype())) + " " + shape_string(d->second->listed->shape()));
    by_path.erase(d);
    for (const IndexChunk& ch : t.chunks) boxes.push_back(&ch.box);
    check_cover(t.shape, t.dtype, boxes, where);
    index.tensors.push_back(std::move(t));
  }
  if (!by_path.empty()) bad(source, "the document's tensor '" + by_path.begin()->first.substr(0, 200) + "' has no chunks");
  return index;
}

}  // namespace ckpt::sharded::detail
