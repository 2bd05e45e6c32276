// Sharded checkpoints (ckpt/sharded.hpp, docs/sharded.md): N ranks save, any M ranks load; a kill
// mid-save keeps the previous checkpoint; a hostile index never makes ckpt read outside the
// folder or allocate for a shape it claims. Ranks are simulated in one process here (the
// protocol is the same functions the trainer calls between MPI collectives; the texts ranks
// send each other go through their parsers).
#include "common.hpp"
#include "thrown.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/sharded.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstring>
#include <map>
#include <sys/wait.h>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::reliability;
using ::testing::HasSubstr;
namespace sh = ckpt::sharded;
using ckpt_test::thrown;

namespace {

Tensor random_tensor(Shape shape, uint64_t seed) {
  Tensor t = Tensor::empty(DType::f32, std::move(shape));
  auto* p = reinterpret_cast<float*>(t.mutable_bytes().data());
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (uint64_t i = 0; i < t.numel(); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = static_cast<float>(x % 100003) / 1000.0f - 50.0f;
  }
  return t;
}

// A training state as data parallelism with a sharded optimizer (ZeRO-1) holds it: parameters
// on every rank, each rank its rows of the optimizer state.
struct Model {
  Document doc;  // the whole document, with bytes
  std::vector<std::string> split;  // tensors whose rows are spread over the ranks
};

Model make_model(bool odd_tensors = false) {
  Model m;
  m.doc.set("format_version", int64_t{1});
  Group& state = m.doc.group("model").group("state");
  state.add_tensor("fc1.weight", random_tensor({37, 11}, 1));
  state.add_tensor("fc1.bias", random_tensor({37}, 2));
  state.add_tensor("fc2.weight", random_tensor({10, 37}, 3));
  Group& opt = m.doc.group("optimizer");
  opt.set("type", "adam").set("lr", 0.001);
  Group& st = opt.group("state");
  st.group("fc1.weight").add_tensor("exp_avg", random_tensor({37, 11}, 4));
  st.group("fc1.weight").add_tensor("exp_avg_sq", random_tensor({37, 11}, 5));
  st.group("fc2.weight").add_tensor("exp_avg", random_tensor({10, 37}, 6));
  m.doc.group("trainer").set("epoch", int64_t{3}).set("loss", 0.25);
  m.doc.group("trainer").add_tensor("step", random_tensor({}, 7));
  if (odd_tensors) m.doc.group("trainer").add_tensor("empty", Tensor::empty(DType::f32, {0, 4}));
  m.split = {"optimizer/state/fc1.weight/exp_avg", "optimizer/state/fc1.weight/exp_avg_sq",
             "optimizer/state/fc2.weight/exp_avg"};
  return m;
}

// Rows [lo, hi) of `rows` for rank r of n: ranks differ by at most one row.
std::pair<int64_t, int64_t> rows_of(int64_t rows, size_t r, size_t n) {
  const int64_t base = rows / static_cast<int64_t>(n), extra = rows % static_cast<int64_t>(n);
  const int64_t lo = static_cast<int64_t>(r) * base + std::min<int64_t>(static_cast<int64_t>(r), extra);
  return {lo, lo + base + (static_cast<int64_t>(r) < extra ? 1 : 0)};
}

// What rank r of n offers: every parameter whole and replicated, its rows of the split ones.
std::vector<sh::Item> items_of(const Model& m, size_t r, size_t n) {
  std::vector<sh::Item> items;
  m.doc.for_each_tensor([&](const std::string& p, const Tensor& t) {
    sh::Item it{p, t.dtype(), t.shape(), sh::Box{std::vector<int64_t>(t.rank(), 0), t.shape()}, true};
    if (std::find(m.split.begin(), m.split.end(), p) != m.split.end()) {
      const auto [lo, hi] = rows_of(t.shape()[0], r, n);
      it.box.offsets[0] = lo;
      it.box.sizes[0] = hi - lo;
      it.replicated = false;
    }
    items.push_back(std::move(it));
  });
  return items;
}

// The bytes of an item's box, cut from the whole tensor (what rank r holds in memory).
std::span<const std::byte> box_bytes(const Model& m, const sh::Item& it, std::vector<std::vector<std::byte>>& keep) {
  const Tensor& t = *m.doc.find_tensor_path(it.path);
  if (it.box.sizes == t.shape()) return t.bytes();
  const size_t row = t.nbytes() / static_cast<size_t>(std::max<int64_t>(t.shape()[0], 1));
  const auto* at = t.bytes().data() + static_cast<size_t>(it.box.offsets[0]) * row;
  return keep.emplace_back(at, at + static_cast<size_t>(it.box.sizes[0]) * row);
}

// N ranks save `m` as the trainer does: gather the item lists, plan, stage, write, gather the
// records, commit. Returns the plan.
std::vector<std::vector<size_t>> save_ranks(const Model& m, const fs::path& target, const std::string& format, size_t n) {
  sh::SaveSpec spec{target, format, n};
  std::vector<std::vector<sh::Item>> per_rank;
  for (size_t r = 0; r < n; ++r)
    per_rank.push_back(sh::parse_items(sh::items_text(items_of(m, r, n)), "rank " + std::to_string(r)));
  const auto plan = sh::plan_save(per_rank);
  sh::Stage stage(spec);
  std::vector<sh::ShardRecord> records;
  std::vector<std::vector<std::byte>> keep;
  for (size_t r = 0; r < n; ++r) {
    const sh::ShardRecord rec = sh::write_shard(spec, r, m.doc, per_rank[r], plan[r],
                                                [&](const sh::Item& it) { return box_bytes(m, it, keep); });
    records.push_back(sh::parse_record(sh::record_text(rec), "rank " + std::to_string(r)));
  }
  stage.commit(m.doc, records);
  return plan;
}

void expect_same_tensor(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  EXPECT_EQ(std::memcmp(got.bytes().data(), want.bytes().data(), want.nbytes()), 0) << what;
}

class ShardedFormats : public ::testing::TestWithParam<std::string> {};

}  // namespace

// Replicated boxes go to the least loaded rank, the same on every rank; split ones stay; what
// does not fit together is refused before anything is written.
TEST(ShardedPlan, DedupsReplicatedBoxesAndRefusesWhatDoesNotFit) {
  const Model m = make_model();
  for (size_t n : {1, 2, 3, 5}) {
    std::vector<std::vector<sh::Item>> per_rank;
    for (size_t r = 0; r < n; ++r) per_rank.push_back(items_of(m, r, n));
    const auto plan = sh::plan_save(per_rank);
    ASSERT_EQ(plan.size(), n);
    std::map<std::string, int> writers;
    std::vector<uint64_t> load(n, 0);
    for (size_t r = 0; r < n; ++r)
      for (size_t i : plan[r]) {
        ++writers[per_rank[r][i].path + "@" + std::to_string(per_rank[r][i].box.offsets.empty() ? 0 : per_rank[r][i].box.offsets[0])];
        load[r] += per_rank[r][i].nbytes();
      }
    for (const auto& [what, count] : writers) EXPECT_EQ(count, 1) << what << " at n=" << n;
    // 4 parameters and scalars whole, 3 tensors in n boxes each.
    EXPECT_EQ(writers.size(), 4 + 3 * n) << n;
    if (n > 1) {
      // Balanced: no rank holds more than the largest replicated tensor above another.
      const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
      EXPECT_LE(*hi - *lo, 37u * 11u * 4u) << n;
    }
    EXPECT_EQ(sh::plan_save(per_rank), plan) << "a plan depends only on its input";
  }
  auto per_rank = std::vector<std::vector<sh::Item>>{items_of(m, 0, 2), items_of(m, 1, 2)};
  per_rank[1][0].shape = {38, 11};
  EXPECT_THAT(thrown<FormatError>([&] { sh::plan_save(per_rank); }), HasSubstr("another rank offers it as f32 [37, 11]"));
  per_rank = {items_of(m, 0, 2), items_of(m, 1, 2)};
  per_rank[1][3].box.offsets[0] -= 1;  // rank 1's rows of exp_avg start inside rank 0's
  per_rank[1][3].box.sizes[0] += 1;
  EXPECT_THAT(thrown<FormatError>([&] { sh::plan_save(per_rank); }), HasSubstr("overlap"));
  per_rank = {items_of(m, 0, 2), items_of(m, 1, 2)};
  per_rank[1].erase(per_rank[1].begin() + 3);  // nobody offers rank 1's rows
  EXPECT_THAT(thrown<FormatError>([&] { sh::plan_save(per_rank); }), HasSubstr("the chunks hold 209 of the tensor's 407 elements"));
  per_rank = {items_of(m, 0, 2), items_of(m, 1, 2)};
  per_rank[1][0].replicated = false;
  EXPECT_THAT(thrown<FormatError>([&] { sh::plan_save(per_rank); }), HasSubstr("not offered as replicated"));
  EXPECT_THAT(thrown<FormatError>([] { sh::parse_items("{\"items\": [{\"path\": 1}]}", "rank 7"); }),
              HasSubstr("rank 7: items[0]: \"path\" is not a string"));
}

// Saved by 1, 2 and 3 ranks, read back whole and by 1 to 4 ranks each taking its rows, in every
// format that holds a checkpoint.
TEST_P(ShardedFormats, SavedAtNLoadsAtAnyM) {
  const std::string format = GetParam();
  const Model m = make_model();
  TempDir tmp("sharded-" + param_name(format));
  for (size_t n : {1, 2, 3}) {
    SCOPED_TRACE("saved by " + std::to_string(n) + " ranks");
    const fs::path target = tmp.path / ("step-" + std::to_string(n));
    save_ranks(m, target, format, n);
    EXPECT_TRUE(sh::is_sharded(target));
    EXPECT_TRUE(temporaries(tmp.path).empty());
    const Document whole = read_document(target);
    EXPECT_EQ(std::get<std::string>(*whole.find_group("optimizer")->attribute("type")), "adam");
    EXPECT_EQ(std::get<int64_t>(*whole.find_group("trainer")->attribute("epoch")), 3);
    size_t count = 0;
    m.doc.for_each_tensor([&](const std::string& p, const Tensor& t) {
      ++count;
      const Tensor* got = whole.find_tensor_path(p);
      ASSERT_TRUE(got) << p;
      expect_same_tensor(*got, t, p);
    });
    EXPECT_EQ(whole.tensor_count(), count);
    auto reader = open(target);
    const VerifyReport v = verify(*reader);
    EXPECT_TRUE(v.ok()) << (v.problems.empty() ? "" : v.problems.front());
    EXPECT_TRUE(v.has_integrity);
    EXPECT_EQ(v.tensors_checked, count);
    for (size_t mm : {1, 2, 3, 4}) {
      for (size_t r = 0; r < mm; ++r) {
        auto rank_reader = open(target);  // each rank its own reader
        for (const std::string& p : m.split) {
          const Tensor& t = *m.doc.find_tensor_path(p);
          const auto [lo, hi] = rows_of(t.shape()[0], r, mm);
          const std::vector<int64_t> start{lo, 0}, size{hi - lo, t.shape()[1]};
          const Tensor got = rank_reader->read_slice(p, start, size);
          const size_t row = t.nbytes() / static_cast<size_t>(t.shape()[0]);
          ASSERT_EQ(got.nbytes(), static_cast<size_t>(hi - lo) * row);
          EXPECT_EQ(std::memcmp(got.bytes().data(), t.bytes().data() + static_cast<size_t>(lo) * row, got.nbytes()), 0)
              << p << " rows " << lo << ":" << hi << " at M=" << mm;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CheckpointFormats, ShardedFormats, ::testing::ValuesIn(checkpoint_formats()),
                         [](const auto& info) { return param_name(info.param); });

// A rank killed after writing its shard, before the commit: the previous checkpoint of that
// name is intact, the staging folder is a stale temporary that gc and the next save remove; a
// save still running keeps its staging folder from both.
TEST(ShardedSave, KillMidSaveKeepsThePreviousCheckpoint) {
  TempDir tmp("sharded-kill");
  const fs::path target = tmp.path / "step-000001000";
  const Model before = make_model();
  save_ranks(before, target, "msgpack", 2);
  Model after = make_model();
  after.doc.find_tensor_path("model/state/fc1.bias")->mutable_bytes()[0] ^= std::byte{1};
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    sh::SaveSpec spec{target, "msgpack", 2};
    std::vector<std::vector<sh::Item>> per_rank{items_of(after, 0, 2), items_of(after, 1, 2)};
    const auto plan = sh::plan_save(per_rank);
    sh::Stage stage(spec);
    std::vector<std::vector<std::byte>> keep;
    sh::write_shard(spec, 0, after.doc, per_rank[0], plan[0], [&](const sh::Item& it) { return box_bytes(after, it, keep); });
    ::raise(SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  const Document still = read_document(target);
  expect_same_tensor(*still.find_tensor_path("model/state/fc1.bias"), *before.doc.find_tensor_path("model/state/fc1.bias"), "bias");
  EXPECT_TRUE(verify(*open(target)).ok());
  ASSERT_EQ(temporaries(tmp.path).size(), 1u);
  EXPECT_EQ(temporaries(tmp.path)[0], sh::staging_folder(target));
  // Live: a save in progress (its lock held) is neither swept nor taken over.
  {
    const fs::path other = tmp.path / "step-000002000";
    sh::Stage running(sh::SaveSpec{other, "msgpack", 2});
    EXPECT_THAT(thrown<IoError>([&] { sh::Stage twice(sh::SaveSpec{other, "msgpack", 2}); }), HasSubstr("another save of it is running"));
    bool live = false;
    for (const TemporaryFile& t : remove_stale_temporaries(tmp.path, {.dry_run = true}))
      if (t.path == sh::staging_folder(other)) live = t.state == TemporaryFile::State::live;
    EXPECT_TRUE(live);
  }
  // Dead: gc removes it; the next save replaces the checkpoint whole.
  const auto swept = remove_stale_temporaries(tmp.path);
  ASSERT_EQ(swept.size(), 1u);
  EXPECT_TRUE(swept[0].removed) << swept[0].note;
  EXPECT_TRUE(temporaries(tmp.path).empty());
  save_ranks(after, target, "msgpack", 3);
  const Document now = read_document(target);
  expect_same_tensor(*now.find_tensor_path("model/state/fc1.bias"), *after.doc.find_tensor_path("model/state/fc1.bias"), "bias");
  EXPECT_FALSE(fs::exists(target / "shard-00000-of-00002.msgpack")) << "the earlier save's shards went with it";
  EXPECT_TRUE(temporaries(tmp.path).empty());
}

// An index is input from whoever made the folder: every claim it makes is checked before it is
// used, and each refusal names the index and the place.
TEST(ShardedRead, HostileIndexesAreRefusedNamingThePlace) {
  TempDir tmp("sharded-hostile");
  const Model m = make_model(true);
  const fs::path good = tmp.path / "good";
  save_ranks(m, good, "msgpack", 2);
  const std::string index_text = read_file(good / sh::kIndexName);
  auto variant = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const fs::path dir = tmp.path / name;
    fs::copy(good, dir, fs::copy_options::recursive);
    nlohmann::json j = nlohmann::json::parse(index_text);
    edit(j);
    write_file(dir / sh::kIndexName, j.dump());
    return dir;
  };
  auto refused = [&](const fs::path& dir) {
    return thrown<Error>([&] {
      auto r = open(dir);
      r->load(false);
    });
  };
  EXPECT_THAT(refused(variant("up", [](auto& j) { j["shards"][1]["file"] = "../good/shard-00001-of-00002.msgpack"; })),
              HasSubstr("shards[1]: '../good/shard-00001-of-00002.msgpack' is not a file name inside the checkpoint's folder"));
  const fs::path linked = variant("linked", [](auto&) {});
  fs::remove(linked / "shard-00001-of-00002.msgpack");
  fs::create_symlink(good / "shard-00001-of-00002.msgpack", linked / "shard-00001-of-00002.msgpack");
  EXPECT_THAT(refused(linked), HasSubstr("'shard-00001-of-00002.msgpack' is a link; the files of a sharded checkpoint are read only from its own folder"));
  EXPECT_THAT(refused(variant("overlap", [](auto& j) {
                for (auto& t : j["tensors"])
                  if (t["chunks"].size() == 2) t["chunks"][1]["offsets"][0] = 0;
              })),
              HasSubstr("overlap"));
  // A shape of 2^80 elements is refused from the numbers alone, before any allocation.
  EXPECT_THAT(refused(variant("huge", [](auto& j) { j["tensors"][0]["shape"] = {1ull << 40, 1ull << 40}; })),
              HasSubstr("tensors[0] ('"));
  EXPECT_THAT(refused(variant("short", [](auto& j) { j["shards"][0]["bytes"] = 12; })), HasSubstr("holds"));
  EXPECT_THAT(refused(variant("future", [](auto& j) { j["version"] = 2; })), HasSubstr("index version 2"));
  EXPECT_THAT(refused(variant("far", [](auto& j) { j["tensors"][0]["chunks"][0]["shard"] = 9; })),
              HasSubstr("shard 9 is not one of the 2"));
  EXPECT_THAT(refused(variant("renamed", [](auto& j) { j["tensors"][0]["chunks"][0]["name"] = "elsewhere"; })),
              HasSubstr("which the index does not name"));
  // An empty hash would make the reader skip the chunk's check: refused, as is a malformed one.
  EXPECT_THAT(refused(variant("unhashed", [](auto& j) { j["tensors"][0]["chunks"][0]["xxh3"] = ""; })),
              ::testing::AllOf(HasSubstr(sh::kIndexName), HasSubstr("tensors[0] ('"), HasSubstr("chunks[0]: chunk '"),
                    HasSubstr("\"xxh3\" is '', not 16 lowercase hex digits")));
  EXPECT_THAT(refused(variant("badhash", [](auto& j) { j["tensors"][0]["chunks"][0]["xxh3"] = "0123456789abcdeg"; })),
              HasSubstr("\"xxh3\" is '0123456789abcdeg', not 16 lowercase hex digits"));
  const fs::path notjson = variant("notjson", [](auto&) {});
  write_file(notjson / sh::kIndexName, std::string(100000, '['));
  EXPECT_THAT(refused(notjson), HasSubstr("nested deeper than an index is"));
  // A document nested deeper than the skeleton codec reads: refused, not recursed into.
  EXPECT_THAT(refused(variant("deep", [](auto& j) {
                // Built by moves: nlohmann's initializer lists copy, and a copy assigned over its
                // own source leaked in the sanitizer build.
                nlohmann::json g = {{"a", nlohmann::json::array()}, {"c", nlohmann::json::array()}};
                for (int i = 0; i < 514; ++i) {
                  nlohmann::json child = nlohmann::json::array({"a", "g"});
                  child.push_back(std::move(g));
                  nlohmann::json next = {{"a", nlohmann::json::array()}, {"c", nlohmann::json::array()}};
                  next["c"].push_back(std::move(child));
                  g = std::move(next);
                }
                j["document"]["root"] = std::move(g);
              })),
              HasSubstr("nested deeper than 512"));
  // An attribute changed in the index's document is what the document says: the index is the
  // one record of groups and attributes (no shard holds another copy to disagree with).
  const fs::path both = variant("both", [](auto&) {});
  write_file(both / "model.safetensors.index.json", "{}");
  EXPECT_THAT(refused(both), HasSubstr("holds both ckpt.sharded.json and model.safetensors.index.json"));
  // A chunk's bytes changed in place: verify names the tensor, the chunk and the shard.
  const fs::path flipped = variant("flipped", [](auto&) {});
  {
    const Tensor& t = *m.doc.find_tensor_path("model/state/fc2.weight");
    for (const auto& e : fs::directory_iterator(flipped)) {
      std::string bytes = read_file(e.path());
      const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(t.bytes().data()), t.nbytes()));
      if (at == std::string::npos) continue;
      bytes[at + 5] ^= 1;
      write_file(e.path(), bytes);
    }
  }
  const VerifyReport v = verify(*open(flipped));
  ASSERT_EQ(v.problems.size(), 1u);
  EXPECT_THAT(v.problems[0], HasSubstr("model/state/fc2.weight: chunk 'model/state/fc2.weight' of shard"));
  // And every reader checks a chunk before it gives any of its bytes: a load, a conversion.
  EXPECT_THAT(thrown<IntegrityError>([&] { read_document(flipped); }),
              HasSubstr("at model/state/fc2.weight: chunk 'model/state/fc2.weight' has hash"));
  auto converted = run_command(cli("convert " + flipped.string() + " " + (tmp.path / "laundered.msgpack").string()));
  EXPECT_NE(converted.code, 0);
  EXPECT_THAT(converted.out, HasSubstr("the shard was changed after it was written"));
  EXPECT_FALSE(fs::exists(tmp.path / "laundered.msgpack"));
}

// A reader opened before a save replaced the folder keeps reading the checkpoint it opened, whole:
// never a mix of the old and the new.
TEST(ShardedRead, AReaderKeepsTheCheckpointItOpened) {
  TempDir tmp("sharded-snapshot");
  const fs::path target = tmp.path / "step";
  const Model before = make_model();
  save_ranks(before, target, "msgpack", 3);
  auto reader = open(target);
  Model after = make_model();
  after.doc.find_tensor_path("optimizer/state/fc2.weight/exp_avg")->mutable_bytes()[7] ^= std::byte{4};
  after.doc.find_tensor_path("model/state/fc1.bias")->mutable_bytes()[3] ^= std::byte{4};
  save_ranks(after, target, "msgpack", 3);
  const Document old = reader->load(false);
  before.doc.for_each_tensor([&](const std::string& p, const Tensor& t) { expect_same_tensor(*old.find_tensor_path(p), t, p); });
  const Document now = read_document(target);
  after.doc.for_each_tensor([&](const std::string& p, const Tensor& t) { expect_same_tensor(*now.find_tensor_path(p), t, p); });
}

// A save replaces a sharded checkpoint whole, so it refuses a folder that holds anything else;
// what the index cannot hold is refused before any shard is written.
TEST(ShardedSave, RefusesFoldersOfOtherFilesAndNamesItCannotHold) {
  TempDir tmp("sharded-refuse");
  const Model m = make_model();
  const fs::path mine = tmp.path / "my-files";
  fs::create_directories(mine / "sub");
  write_file(mine / "notes.txt", "keep me");
  EXPECT_THAT(thrown<UsageError>([&] { save_ranks(m, mine, "msgpack", 2); }), HasSubstr("a folder holding other files"));
  EXPECT_EQ(read_file(mine / "notes.txt"), "keep me");
  EXPECT_TRUE(fs::exists(mine / "sub"));
  const fs::path src = tmp.path / "model.msgpack";
  write_document(m.doc, src);
  auto c = run_command(cli("convert " + src.string() + " " + tmp.path.string() + " --shards 2 --to msgpack"));
  EXPECT_NE(c.code, 0);
  EXPECT_TRUE(fs::exists(src)) << "the source beside the target survives";
  // An empty folder is taken.
  fs::create_directories(tmp.path / "empty");
  save_ranks(m, tmp.path / "empty", "msgpack", 2);
  EXPECT_TRUE(sh::is_sharded(tmp.path / "empty"));
  // A name JSON cannot hold: nothing written, nothing left behind.
  Document odd = m.doc;
  odd.add_tensor("bad\xff", random_tensor({2}, 9));
  EXPECT_THAT(thrown<UnsupportedError>([&] { sh::save_document(odd, sh::SaveSpec{tmp.path / "odd", "msgpack", 2}, 2); }),
              HasSubstr("not UTF-8"));
  EXPECT_FALSE(fs::exists(tmp.path / "odd"));
  EXPECT_TRUE(temporaries(tmp.path).empty());
  // The document's own attributes stay in the index, whatever the shard format holds: a torch
  // layout record (which the pytorch writer checks against the tensors beside it) included.
  Document with_layout = m.doc;
  with_layout.group("meta").set("torch_layout", "{\"not\": \"checked here\"}");
  sh::save_document(with_layout, sh::SaveSpec{tmp.path / "pt", "pytorch", 2}, 2);
  const Document back = read_document(tmp.path / "pt");
  EXPECT_EQ(std::get<std::string>(*back.find_group("meta")->attribute("torch_layout")), "{\"not\": \"checked here\"}");
}

// The command line takes a sharded folder wherever it takes a file: convert splits and
// consolidates (every writable format), inspect lists, verify checks, diff compares; sign refuses.
TEST(ShardedCli, ConvertSplitsAndConsolidatesInspectVerifyDiff) {
  TempDir tmp("sharded-cli");
  const Model m = make_model();
  const fs::path src = tmp.path / "model.msgpack";
  write_document(m.doc, src);
  const fs::path out = tmp.path / "out";
  auto split = run_command(cli("convert " + src.string() + " " + out.string() + " --shards 3 --to safetensors"));
  ASSERT_EQ(split.code, 0) << split.out;
  EXPECT_TRUE(fs::exists(out / "shard-00002-of-00003.safetensors"));
  auto listed = run_command(cli("inspect " + out.string()));
  EXPECT_EQ(listed.code, 0) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("(safetensors, 7 tensors"));
  EXPECT_THAT(listed.out, HasSubstr("exp_avg_sq  f32 [37, 11]"));
  auto checked = run_command(cli("verify " + out.string()));
  EXPECT_EQ(checked.code, 0) << checked.out;
  auto same = run_command(cli("diff " + src.string() + " " + out.string()));
  EXPECT_EQ(same.code, 0) << same.out;
  auto signing = run_command(cli("keygen " + (tmp.path / "k").string()) + " && " +
                             cli("sign " + out.string() + " --key " + (tmp.path / "k").string()));
  EXPECT_NE(signing.code, 0);
  EXPECT_THAT(signing.out, HasSubstr("a folder (a sharded checkpoint) is not signed as one file"));
  for (const std::string& format : writable_formats()) {
    const Format f = Registry::global().get(format);
    const fs::path back = tmp.path / ("back-" + file_name(f.info()));
    auto c = run_command(cli("convert --allow-lossy " + out.string() + " " + back.string() + " --to " + format));
    ASSERT_EQ(c.code, 0) << format << ": " << c.out;
    const Document d = read_document(back);
    EXPECT_EQ(d.tensor_count(), m.doc.tensor_count()) << format;
  }
  const Document whole = read_document(tmp.path / "back-model.msgpack");
  m.doc.for_each_tensor([&](const std::string& p, const Tensor& t) { expect_same_tensor(*whole.find_tensor_path(p), t, p); });
  auto no_format = run_command(cli("convert " + src.string() + " " + (tmp.path / "x").string() + " --shards 2"));
  EXPECT_NE(no_format.code, 0);
  EXPECT_THAT(no_format.out, HasSubstr("name the shards' format with --to"));
}
