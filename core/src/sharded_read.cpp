// Reading a sharded checkpoint at any world size (ckpt/sharded.hpp): one document whose tensors
// are assembled from their chunks, each shard opened when first needed.
#include "sharded_index.hpp"
#include "small_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>

#include <map>
#include <set>

namespace ckpt::sharded {

namespace {

constexpr size_t kMaxIndexBytes = size_t{256} << 20;

// `tree`'s groups and attributes, without tensors.
Group groups_of(const Group& g) {
  Group out;
  for (const auto& a : g.attributes()) out.set(a.name, a.value);
  for (const Node& c : g.children())
    if (c.is_group()) out.add_group(c.name) = groups_of(c.group());
  return out;
}

bool inside(const fs::path& p, const fs::path& dir) {
  const auto rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != ".." && !rel.is_absolute();
}

}  // namespace

std::shared_ptr<FormatReader> open(const fs::path& folder, const LoadOptions& options) {
  const fs::path index_path = folder / kIndexName;
  const std::string source = "'" + index_path.string() + "'";
  auto index = std::make_shared<const detail::Index>(
      detail::parse_index(::ckpt::detail::read_small_file(index_path, kMaxIndexBytes, "a sharded checkpoint's index"), source));
  const Registry& reg = options.registry ? *options.registry : Registry::global();
  const Format format = reg.get(index->shard_format);
  if (index->world != index->shards.size())
    throw FormatError(source + ": world " + std::to_string(index->world) + " but " + std::to_string(index->shards.size()) + " shards");
  // Per shard, the chunk names the index gives it: a shard holds exactly those tensors.
  auto names = std::make_shared<std::vector<std::set<std::string>>>(index->shards.size());
  for (const auto& t : index->tensors)
    for (const auto& c : t.chunks)
      if (!(*names)[c.shard].insert(c.name).second)
        throw FormatError(source + ": '" + t.path + "': shard " + std::to_string(c.shard) + " holds chunk '" + c.name + "' twice");
  const fs::path real_folder = fs::weakly_canonical(folder);
  const Options read_options = options.format_options;
  auto open_part = [index, names, folder, real_folder, format, read_options, &reg, source](size_t k) {
    const auto& [file, bytes] = index->shards.at(k);
    const fs::path path = folder / file;
    std::error_code ec;
    const fs::path real = fs::weakly_canonical(path, ec);
    if (ec || !inside(real, real_folder))
      throw FormatError(source + ": shard '" + file + "' is a link to '" + real.string() + "', outside the checkpoint's folder");
    const uint64_t size = fs::file_size(path, ec);
    if (ec) throw FormatError(source + ": shard '" + file + "' cannot be read: " + ec.message());
    if (size != bytes)
      throw FormatError(source + ": shard '" + file + "' holds " + std::to_string(size) + " bytes, the index says " + std::to_string(bytes));
    auto r = format.open_reader(path, read_options);
    reg.check_one_reading(path, format);
    // Every chunk the index puts here, as the index describes it, and nothing else.
    std::map<std::string, const detail::IndexChunk*> expected;
    for (const auto& t : index->tensors)
      for (const auto& c : t.chunks)
        if (c.shard == k) expected.emplace(c.name, &c);
    std::map<std::string, const detail::IndexTensor*> tensor_of;
    for (const auto& t : index->tensors)
      for (const auto& c : t.chunks)
        if (c.shard == k) tensor_of.emplace(c.name, &t);
    size_t found = 0;
    r->tree().for_each_tensor([&](const std::string& p, const Tensor& t) {
      const auto it = expected.find(p);
      if (it == expected.end()) throw FormatError("'" + path.string() + "' holds '" + p + "', which the index does not name");
      const detail::IndexTensor& whole = *tensor_of.at(p);
      if (t.dtype() != whole.dtype || t.shape() != it->second->box.sizes)
        throw FormatError("'" + path.string() + "' at " + p + ": " + std::string(name(t.dtype())) + " " + shape_string(t.shape()) +
                          ", the index says a chunk " + std::string(name(whole.dtype)) + " " + shape_string(it->second->box.sizes));
      ++found;
    });
    if (found != expected.size()) {
      for (const auto& [n, c] : expected)
        if (!r->tree().find_tensor_path(n)) throw FormatError("'" + path.string() + "' lacks '" + n + "', which the index puts there");
    }
    return r;
  };
  // The groups and attributes are shard 0's; the tensors the index's, in its order.
  const auto first = open_part(0);
  Document tree = groups_of(first->tree());
  std::map<std::string, const detail::IndexTensor*> by_path;
  for (const auto& t : index->tensors) {
    const std::string what = source + ": '" + t.path + "'";
    if (!by_path.emplace(t.path, &t).second) throw FormatError(what + " is listed twice");
    Group* g = &tree;
    size_t at = 0;
    std::string leaf = t.path;
    for (size_t slash; (slash = t.path.find('/', at)) != std::string::npos; at = slash + 1) {
      const std::string part = t.path.substr(at, slash - at);
      if (part.empty()) throw FormatError(what + ": an empty name in its path");
      if (const Node* n = g->find(part); n && !n->is_group()) throw FormatError(what + ": '" + part + "' is a tensor");
      g = &g->group(part);
      leaf = t.path.substr(slash + 1);
    }
    if (leaf.empty() || g->find(leaf)) throw FormatError(what + ": its name is empty or taken");
    g->add_tensor(leaf, Tensor(t.dtype, t.shape, nullptr));
  }
  std::vector<std::vector<FormatReader::ChunkRef>> chunks;
  tree.for_each_tensor([&](const std::string& p, const Tensor&) {
    std::vector<FormatReader::ChunkRef> refs;
    for (const auto& c : by_path.at(p)->chunks) refs.push_back({c.shard, c.name, c.box.offsets, c.box.sizes});
    chunks.push_back(std::move(refs));
  });
  auto reader = FormatReader::chunked(
      folder, format.info(), std::move(tree), std::move(chunks), index->shards.size(),
      [first, open_part](size_t k) { return k == 0 ? first : open_part(k); },
      [index, open_part, first, source](uint64_t& tensors, uint64_t& bytes) {
        std::vector<std::string> problems;
        std::vector<std::shared_ptr<FormatReader>> parts(index->shards.size());
        parts[0] = first;
        for (const auto& t : index->tensors) {
          ++tensors;
          for (const auto& c : t.chunks) {
            try {
              if (!parts[c.shard]) parts[c.shard] = open_part(c.shard);
              std::optional<Tensor> m = parts[c.shard]->map(c.name);
              if (!m) m = parts[c.shard]->read(c.name);
              bytes += m->nbytes();
              if (const std::string h = hash_hex(hash_bytes(m->bytes())); h != c.xxh3)
                problems.push_back(t.path + ": chunk '" + c.name + "' of shard '" + index->shards[c.shard].first + "' has hash " + h +
                                   ", the index records " + c.xxh3);
            } catch (const Error& e) {
              problems.push_back(t.path + ": " + e.what());
            }
          }
        }
        return problems;
      });
  return reader;
}

}  // namespace ckpt::sharded
