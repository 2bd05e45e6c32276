// The page over what a real ModelServer serves (its ServedList, not a hand-made one): a version
// is shown as it is held in memory, so a training folder's file that is replaced or removed
// after loading, and a version pulled from the registry (which has no file), are shown as
// served.
#include "test_ui_support.hpp"

#include <ckpt/registry/model_registry.hpp>
#include <ckpt/serve/model_server.hpp>
#include <ckpt/serve/ui_routes.hpp>
#include <ckpt/train/manager.hpp>
#include <ckpt/train/model.hpp>

#include <algorithm>

using namespace ckpt_ui_test;
using ckpt::serve::ModelServer;
using ckpt::serve::Router;

namespace {

// A real 6-5-3 MLP checkpoint (the model server rebuilds it) whose weights depend on `seed`.
ckpt::Checkpoint mlp(uint64_t seed) {
  auto m = ckpt::train::Model::from_spec(ckpt::train::Model::mlp_spec(6, {5}, 3), seed);
  ckpt::Checkpoint c;
  c.model_spec = m->spec();
  c.model_state = ckpt::train::clone_tensors(m->state_dict());
  return c;
}

// The min and max of a tensor, as the page's statistics report them.
std::pair<double, double> range_of(const ckpt::Checkpoint& c, const std::string& name) {
  auto v = c.model_state.find_tensor(name)->data<float>();
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {*lo, *hi};
}

// Copies `from` to `to` as a save does: a temporary, then a rename over the old name.
void replace(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to.parent_path() / ".replacing", fs::copy_options::overwrite_existing);
  fs::rename(to.parent_path() / ".replacing", to);
}

ckpt::serve::ServeOptions no_polling() {
  ckpt::serve::ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  o.max_batch = 1;
  return o;
}

void expect_stats_of(const Router& router, const std::string& model, const ckpt::Checkpoint& c) {
  json s = get_json(router, "/api/ui/stats", {{"ckpt", model}, {"tensor", "model/state/fc1.weight"}}, 200);
  auto [lo, hi] = range_of(c, "fc1.weight");
  EXPECT_EQ(s["min"].get<double>(), lo) << s.dump();
  EXPECT_EQ(s["max"].get<double>(), hi) << s.dump();
}

TEST(UiServed, ATrainingFolderVersionIsShownAsServedWhenItsFileIsReplacedOrRemoved) {
  ckpt_test::TempDir dir("ui-served");
  fs::create_directories(dir / "run");
  const ckpt::Checkpoint a = mlp(1), b = mlp(2);
  ckpt::save(a, dir / "run" / "step-000000010.msgpack");
  ckpt::save(b, dir / "b.msgpack");
  ModelServer models({{"m", (dir / "run").string()}}, no_polling());
  Router router;
  ckpt::serve::add_ui_routes(router, models.served());

  json t = get_json(router, "/api/ui/tree", {{"ckpt", "m"}}, 200);
  EXPECT_EQ(t["version"], 10);
  EXPECT_TRUE(t["in_memory"]) << t.dump();
  expect_stats_of(router, "m", a);

  // Rewritten in place under the same name (a save of another run into the folder): the page
  // still shows what predictions use.
  replace(dir / "b.msgpack", dir / "run" / "step-000000010.msgpack");
  expect_stats_of(router, "m", a);
  json v = get_json(router, "/api/ui/verify", {{"ckpt", "m"}}, 200);
  EXPECT_TRUE(v["hashes"]["ok"]) << v.dump();
  // The same file named explicitly is the file on disk, labelled as such.
  json f = get_json(router, "/api/ui/stats", {{"ckpt", "m"}, {"file", "step-000000010.msgpack"}, {"tensor", "model/state/fc1.weight"}}, 200);
  EXPECT_EQ(f["min"].get<double>(), range_of(b, "fc1.weight").first);
  json d = get_json(router, "/api/ui/diff", {{"a", "m"}, {"b", "m"}, {"bfile", "step-000000010.msgpack"}}, 200);
  EXPECT_EQ(d["tensors_differing"], 4) << d.dump();

  // Removed (keep_last retention): still shown, as still served.
  fs::remove(dir / "run" / "step-000000010.msgpack");
  t = get_json(router, "/api/ui/tree", {{"ckpt", "m"}}, 200);
  EXPECT_EQ(t["version"], 10);
  expect_stats_of(router, "m", a);
}

TEST(UiServed, ARegistryVersionIsShownFromMemory) {
  namespace mr = ckpt::model_registry;
  ckpt_test::TempDir dir("ui-registry");
  const ckpt::Checkpoint a = mlp(3);
  ckpt::save(a, dir / "a.msgpack");
  const std::string uri = "sqlite://" + (dir / "reg.db").string();
  auto reg = mr::ModelRegistry::open(uri, mr::ModelRegistry::Open::create);
  mr::RegisterOptions ro;
  ro.name = "mlp";
  ro.aliases = {"production"};
  ro.fsync = false;
  ASSERT_EQ(reg->register_checkpoint(dir / "a.msgpack", ro).version, 1);

  auto o = no_polling();
  o.registry_uri = uri;
  ModelServer models({{"m", "registry:mlp@production"}}, o);
  const auto served = models.served()();
  ASSERT_EQ(served.size(), 1u);
  ASSERT_EQ(served[0].path, "registry:mlp/1");  // what the page is handed: no file to open
  Router router;
  ckpt::serve::add_ui_routes(router, models.served());

  json t = get_json(router, "/api/ui/tree", {{"ckpt", "m"}}, 200);
  EXPECT_EQ(t["version"], 1);
  EXPECT_EQ(t["path"], "registry:mlp/1");
  EXPECT_TRUE(t["schema"]["checkpoint"]);
  expect_stats_of(router, "m", a);
  json v = get_json(router, "/api/ui/verify", {{"ckpt", "m"}}, 200);
  EXPECT_TRUE(v["hashes"]["ok"]) << v.dump();
  EXPECT_TRUE(v["hashes"]["in_memory"]) << v.dump();  // checked against its record when loaded
  json d = get_json(router, "/api/ui/diff", {{"a", "m"}, {"b", "m"}}, 200);
  EXPECT_TRUE(d["identical"]) << d.dump();
  EXPECT_EQ(d["tensors_compared"], 4);
}

}  // namespace
