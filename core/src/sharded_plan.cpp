// The save planner and the texts ranks send each other (ckpt/sharded.hpp).
#include "sharded_index.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/sdk_value.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <tuple>

namespace ckpt::sharded {

using nlohmann::json;
using detail::box_json;
using detail::parse_box;

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw FormatError(where + ": " + what); }

json parse_text(const std::string& text, const std::string& source) {
  return detail::parse_json(text, source, 8, "ckpt writes");
}

}  // namespace

std::string items_text(const std::vector<Item>& items) {
  json list = json::array();
  for (const Item& it : items) {
    json j = box_json(it.box);
    j["path"] = it.path;
    j["dtype"] = std::string(name(it.dtype));
    j["shape"] = it.shape;
    j["replicated"] = it.replicated;
    list.push_back(std::move(j));
  }
  return json{{"items", std::move(list)}}.dump();
}

std::vector<Item> parse_items(const std::string& text, const std::string& source) {
  const json j = parse_text(text, source);
  const json& list = detail::json_member(j, "items", source);
  if (!list.is_array()) bad(source, "\"items\" is not a list");
  std::vector<Item> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = source + ": items[" + std::to_string(i) + "]";
    Item it;
    it.path = detail::json_string(list[i], "path", where);
    try {
      it.dtype = dtype_from_name(detail::json_string(list[i], "dtype", where));
    } catch (const Error& e) {
      bad(where, e.what());
    }
    const json& shape = detail::json_member(list[i], "shape", where);
    if (!shape.is_array()) bad(where, "\"shape\" is not a list");
    for (const json& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) bad(where, "\"shape\" holds a value that is not a dimension");
      it.shape.push_back(d.get<int64_t>());
    }
    it.box = parse_box(list[i], where);
    const json& rep = detail::json_member(list[i], "replicated", where);
    if (!rep.is_boolean()) bad(where, "\"replicated\" is not true or false");
    it.replicated = rep.get<bool>();
    out.push_back(std::move(it));
  }
  return out;
}

std::vector<std::vector<size_t>> plan_save(const std::vector<std::vector<Item>>& per_rank) {
  struct Holder {
    size_t rank, index;
  };
  // Per tensor, its boxes and who holds each; std::map: the same order on every rank.
  struct TensorPlan {
    const Item* first = nullptr;
    std::map<std::pair<std::vector<int64_t>, std::vector<int64_t>>, std::vector<Holder>> boxes;
  };
  std::map<std::string, TensorPlan> tensors;
  for (size_t r = 0; r < per_rank.size(); ++r)
    for (size_t i = 0; i < per_rank[r].size(); ++i) {
      const Item& it = per_rank[r][i];
      TensorPlan& t = tensors[it.path];
      if (!t.first) t.first = &it;
      else if (t.first->dtype != it.dtype || t.first->shape != it.shape)
        bad("rank " + std::to_string(r) + ": '" + it.path + "'",
            "offered as " + std::string(name(it.dtype)) + " " + shape_string(it.shape) + ", another rank offers it as " +
                std::string(name(t.first->dtype)) + " " + shape_string(t.first->shape));
      t.boxes[{it.box.offsets, it.box.sizes}].push_back({r, i});
    }
  std::vector<std::vector<size_t>> plan(per_rank.size());
  std::vector<uint64_t> load(per_rank.size(), 0);
  struct Shared {
    uint64_t bytes;
    const std::string* path;
    const std::vector<int64_t>* offsets;
    const std::vector<Holder>* holders;
  };
  std::vector<Shared> shared;
  for (const auto& [path, t] : tensors) {
    std::vector<Box> distinct;
    for (const auto& [key, holders] : t.boxes) {
      distinct.push_back(Box{key.first, key.second});
      const Item& it = per_rank[holders[0].rank][holders[0].index];
      if (holders.size() == 1) {
        plan[holders[0].rank].push_back(holders[0].index);
        load[holders[0].rank] += it.nbytes();
        continue;
      }
      for (const Holder& h : holders)
        if (!per_rank[h.rank][h.index].replicated)
          bad("rank " + std::to_string(h.rank) + ": '" + path + "'",
              "a box other ranks hold too, not offered as replicated (which rank's bytes are the tensor's?)");
      shared.push_back({it.nbytes(), &path, &key.first, &holders});
    }
    std::vector<const Box*> boxes;
    for (const Box& b : distinct) boxes.push_back(&b);
    detail::check_cover(t.first->shape, t.first->dtype, boxes, "'" + path + "' as the ranks offer it");
  }
  // Largest first, then by path and offsets: each to the least loaded of its holders.
  std::stable_sort(shared.begin(), shared.end(), [](const Shared& a, const Shared& b) {
    return std::tie(b.bytes, *a.path, *a.offsets) < std::tie(a.bytes, *b.path, *b.offsets);
  });
  for (const Shared& s : shared) {
    const Holder* best = nullptr;
    for (const Holder& h : *s.holders)
      if (!best || load[h.rank] < load[best->rank] || (load[h.rank] == load[best->rank] && h.rank < best->rank)) best = &h;
    plan[best->rank].push_back(best->index);
    load[best->rank] += s.bytes;
  }
  for (auto& p : plan) std::sort(p.begin(), p.end());
  return plan;
}

std::string record_text(const ShardRecord& record) {
  json chunks = json::array();
  for (const auto& c : record.chunks) {
    json j = box_json(c.box);
    j["path"] = c.path;
    j["name"] = c.name;
    j["xxh3"] = c.xxh3;
    chunks.push_back(std::move(j));
  }
  return json{{"rank", record.rank}, {"file", record.file}, {"bytes", record.bytes}, {"chunks", std::move(chunks)}}.dump();
}

ShardRecord parse_record(const std::string& text, const std::string& source) {
  const json j = parse_text(text, source);
  ShardRecord r;
  r.rank = detail::json_count(j, "rank", source);
  r.file = detail::json_string(j, "file", source);
  r.bytes = detail::json_count(j, "bytes", source);
  const json& chunks = detail::json_member(j, "chunks", source);
  if (!chunks.is_array()) bad(source, "\"chunks\" is not a list");
  for (size_t i = 0; i < chunks.size(); ++i) {
    const std::string where = source + ": chunks[" + std::to_string(i) + "]";
    ShardRecord::Chunk c;
    c.path = detail::json_string(chunks[i], "path", where);
    c.box = parse_box(chunks[i], where);
    c.name = detail::json_string(chunks[i], "name", where);
    c.xxh3 = detail::json_string(chunks[i], "xxh3", where);
    r.chunks.push_back(std::move(c));
  }
  return r;
}

}  // namespace ckpt::sharded
