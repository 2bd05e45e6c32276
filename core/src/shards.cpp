#include "shards.hpp"

#include "small_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>
#include <ckpt/sdk_value.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>

namespace ckpt::detail {

namespace {

constexpr size_t kMaxIndexBytes = 64 << 20;

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::optional<fs::path> sharded_entry(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const bool index = fs::exists(path / kShardIndex, ec), single = fs::exists(path / "model.safetensors", ec);
    // transformers loads model.safetensors first where ckpt would read the index: two readings.
    if (index && single)
      throw FormatError("'" + path.string() + "' holds both model.safetensors and " + kShardIndex +
                        " (two checkpoints; Hugging Face's loaders take the first, so which one is meant?)");
    if (index) return path / kShardIndex;
    if (single) return path / "model.safetensors";
    return std::nullopt;
  }
  if (ends_with(path.filename().string(), ".safetensors.index.json")) return path;
  return std::nullopt;
}

std::shared_ptr<FormatReader> open_sharded(const fs::path& index, const LoadOptions& options) {
  const std::string where = "'" + index.string() + "'";
  const std::string text = read_small_file(index, kMaxIndexBytes, "a shard index");
  if (auto nul = sdk::json_nul_problem(text); !nul.empty()) throw FormatError(where + ": not JSON: " + nul);
  if (sdk::json_nesting(text) > 16) throw FormatError(where + ": nested deeper than a shard index is");
  // Sorted, not ordered: ordered_json's map inserts in linear time (a 2 MB index took 35 s),
  // and a repeated key keeps its last value either way, as Python's json does.
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(where + ": not a JSON object");
  auto map = j.find("weight_map");
  if (map == j.end() || !map->is_object() || map->empty())
    throw FormatError(where + ": no weight_map (an object of tensor name to shard file)");
  // Shards are files beside the index, named by a plain file name: an index never makes ckpt
  // read outside its folder.
  std::vector<std::string> files;
  std::map<std::string, std::vector<std::string>> names_in;
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string()) throw FormatError(where + ": weight_map['" + name + "'] is not a file name");
    const std::string f = file.get<std::string>();
    if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
        f.find('\0') != std::string::npos)
      throw FormatError(where + ": weight_map['" + name + "'] names '" + f + "', not a file beside the index");
    auto [it, fresh] = names_in.try_emplace(f);
    if (fresh) files.push_back(f);
    it->second.push_back(name);
  }
  // In the order of their names (model-00001-of-00003 first), which is the order of the tensors
  // they hold; the weight_map is sorted by tensor name.
  std::sort(files.begin(), files.end());
  const Registry& reg = options.registry ? *options.registry : Registry::global();
  const Format st = reg.get("safetensors");
  std::vector<std::shared_ptr<FormatReader>> parts;
  uint64_t total = 0;
  const fs::path folder = fs::weakly_canonical(index.parent_path());
  // Hugging Face's cache keeps shards as links from snapshots/<revision>/ into ../../blobs/.
  const bool cache = folder.parent_path().filename() == "snapshots";
  const fs::path blobs = folder.parent_path().parent_path() / "blobs";
  auto inside = [](const fs::path& p, const fs::path& dir) {
    const auto rel = p.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != ".." && !rel.is_absolute();
  };
  for (const std::string& f : files) {
    const fs::path shard = index.parent_path() / f;
    std::error_code ec;
    const fs::path real = fs::weakly_canonical(shard, ec);
    if (ec || !(inside(real, folder) || (cache && inside(real, blobs))))
      throw FormatError(where + ": shard '" + f + "' is a link to '" + real.string() +
                        "', outside the index's folder (only Hugging Face's cache links into ../../blobs are followed)");
    auto r = st.open_reader(shard, options.format_options);
    reg.check_one_reading(shard, st);
    // The shard holds exactly the tensors the index gives it: a tensor in neither place, or in
    // a shard the index does not say, would be loaded by one reader and not another.
    std::vector<std::string> held;
    r->tree().for_each_tensor([&](const std::string& p, const Tensor& t) {
      held.push_back(p);
      total += t.nbytes();
    });
    std::vector<std::string> listed = names_in[f];
    std::sort(held.begin(), held.end());
    std::sort(listed.begin(), listed.end());
    if (held != listed) {
      std::vector<std::string> only_held, only_listed;
      std::set_difference(held.begin(), held.end(), listed.begin(), listed.end(), std::back_inserter(only_held));
      std::set_difference(listed.begin(), listed.end(), held.begin(), held.end(), std::back_inserter(only_listed));
      throw FormatError(where + ": shard '" + f + "' " +
                        (only_listed.empty() ? "holds '" + only_held.front() + "', which the weight_map gives no shard or another"
                                             : "lacks '" + only_listed.front() + "', which the weight_map puts there"));
    }
    parts.push_back(std::move(r));
  }
  if (auto meta = j.find("metadata"); meta != j.end() && meta->is_object()) {
    if (auto ts = meta->find("total_size"); ts != meta->end()) {
      if (!ts->is_number_unsigned() && !(ts->is_number_float() && ts->get<double>() == static_cast<double>(total)))
        throw FormatError(where + ": metadata.total_size is " + ts->dump().substr(0, 64) + ", not a number of bytes");
      if (ts->is_number_unsigned() && ts->get<uint64_t>() != total)
        throw FormatError(where + ": metadata.total_size says " + std::to_string(ts->get<uint64_t>()) + " bytes, the shards hold " +
                          std::to_string(total));
    }
  }
  return FormatReader::merged(index, std::move(parts));
}

std::vector<std::vector<size_t>> plan_shards(const std::vector<uint64_t>& tensor_bytes, uint64_t max_bytes) {
  // huggingface_hub's split_torch_state_dict_into_shards: a tensor above the limit is a shard of
  // its own at once, and does not close the shard being filled.
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> current;
  uint64_t size = 0;
  for (size_t i = 0; i < tensor_bytes.size(); ++i) {
    if (tensor_bytes[i] > max_bytes) {
      shards.push_back({i});
      continue;
    }
    if (size + tensor_bytes[i] > max_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      size = 0;
    }
    current.push_back(i);
    size += tensor_bytes[i];
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  return shards;
}

std::string shard_name(size_t index, size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return buf;
}

std::string shard_index_text(uint64_t total_size, const std::vector<std::pair<std::string, std::string>>& weight_map) {
  nlohmann::json j;  // sorted keys, as Hugging Face's writer sorts the weight_map
  j["metadata"]["total_size"] = total_size;
  j["weight_map"] = nlohmann::json::object();
  for (const auto& [name, file] : weight_map) j["weight_map"][name] = file;
  return j.dump(2) + "\n";
}

uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    throw UsageError("'" + text + "' is not a size (5GB, 500MB, 2GiB or bytes)");
  }
  std::string unit = text.substr(used);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  static const std::map<std::string, double> units = {
      {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
      {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  auto it = units.find(unit);
  if (it == units.end() || !(v > 0) || v * it->second > 9e18) throw UsageError("'" + text + "' is not a size (5GB, 500MB, 2GiB or bytes)");
  return static_cast<uint64_t>(v * it->second);
}

}  // namespace ckpt::detail
