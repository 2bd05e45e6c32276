// The web page's JSON API through Router::dispatch, over real checkpoints: written by ckpt, and
// by torch.save with the statistics numpy computes for each tensor.
#include "test_ui_support.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/serve/ui_routes.hpp>
#include <ckpt/signature.hpp>

#include <cmath>
#include <sys/mman.h>

using namespace ckpt_ui_test;
using ckpt::serve::Router;
using ckpt::serve::ServedCheckpoint;

namespace {

class UiApi : public ::testing::Test {
 protected:
  ckpt_test::TempDir dir{"ui-api"};
  std::vector<ServedCheckpoint> served;
  Router router;

  void SetUp() override {
    // A training folder of three checkpoints, and two single files that differ in one weight.
    fs::create_directories(dir / "run");
    for (int e = 1; e <= 3; ++e) {
      char name[64];
      std::snprintf(name, sizeof name, "step-%09d.msgpack", e * 10);
      ckpt::save(small_checkpoint(e, 0.1f * static_cast<float>(e)), dir / "run" / name);
    }
    ckpt::save(small_checkpoint(1, 0.0f), dir / "a.msgpack");
    ckpt::Checkpoint b = small_checkpoint(1, 0.5f);
    b.model_state.add_tensor("fc2.weight", f32({2}, {1.0f, 2.0f}));
    ckpt::save(b, dir / "b.json");
    served = {
        {"run", 3, (dir / "run").string(), (dir / "run" / "step-000000030.msgpack").string(), nullptr},
        {"a", 1, (dir / "a.msgpack").string(), (dir / "a.msgpack").string(), nullptr},
        {"b", 1, (dir / "b.json").string(), (dir / "b.json").string(), nullptr},
    };
    ckpt::serve::add_ui_routes(router, [this] { return served; });
  }
};

const json* find_child(const json& group, const std::string& name) {
  for (const auto& c : group["children"])
    if (c["name"] == name) return &c;
  return nullptr;
}

TEST_F(UiApi, ListsWhatIsServedWithTheFilesOfATrainingFolder) {
  json j = get_json(router, "/api/ui/checkpoints", {}, 200);
  ASSERT_EQ(j["checkpoints"].size(), 3u);
  EXPECT_EQ(j["mode"], "serve");
  const json& run = j["checkpoints"][0];
  EXPECT_EQ(run["name"], "run");
  EXPECT_TRUE(run["training_folder"]);
  ASSERT_EQ(run["files"].size(), 3u);
  EXPECT_EQ(run["files"][0]["name"], "step-000000010.msgpack");
  EXPECT_EQ(run["files"][2]["step"], 30);
  EXPECT_FALSE(j["checkpoints"][1]["training_folder"]);
  EXPECT_TRUE(j["checkpoints"][1]["files"].empty());
}

TEST_F(UiApi, TreeHasGroupsTensorsAttributesAndSchemaParts) {
  json j = get_json(router, "/api/ui/tree", {{"ckpt", "a"}}, 200);
  EXPECT_EQ(j["format"], "msgpack");
  const json& root = j["tree"];
  const json* model = find_child(root, "model");
  ASSERT_NE(model, nullptr);
  const json* state = find_child(*model, "state");
  ASSERT_NE(state, nullptr);
  const json* w = find_child(*state, "fc1.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ((*w)["kind"], "tensor");
  EXPECT_EQ((*w)["path"], "model/state/fc1.weight");
  EXPECT_EQ((*w)["dtype"], "f32");
  EXPECT_EQ((*w)["shape"], json::array({4, 3}));
  EXPECT_EQ((*w)["bytes"], 48);
  const json* optimizer = find_child(root, "optimizer");
  ASSERT_NE(optimizer, nullptr);
  bool has_type = false;
  for (const auto& a : (*optimizer)["attributes"])
    if (a["name"] == "type") has_type = a["text"].get<std::string>().find("sgd") != std::string::npos;
  EXPECT_TRUE(has_type) << (*optimizer)["attributes"].dump();

  const json& s = j["schema"];
  EXPECT_TRUE(s["checkpoint"]);
  EXPECT_EQ(s["schema_version"], 1);
  std::map<std::string, json> parts;
  for (const auto& p : s["parts"]) parts[p["path"]] = p;
  EXPECT_TRUE(parts["model/spec"]["present"]);
  EXPECT_EQ(parts["model/state"]["tensors"], 2);
  EXPECT_TRUE(parts["optimizer"]["present"]);
  EXPECT_TRUE(parts["trainer"]["present"]);
  EXPECT_TRUE(s["integrity"]["recorded"]);
  EXPECT_EQ(s["integrity"]["hashes"], 2);
  EXPECT_TRUE(s["integrity"]["problems"].empty());
  EXPECT_FALSE(s["signature"]["present"]);
}

TEST_F(UiApi, SignatureAndFullHashCheckUseCoresVerification) {
  auto [secret, pub] = ckpt::generate_key_pair();
  ckpt::sign_file(dir / "a.msgpack", secret);
  json t = get_json(router, "/api/ui/tree", {{"ckpt", "a"}}, 200);
  EXPECT_TRUE(t["schema"]["signature"]["present"]);
  EXPECT_EQ(t["schema"]["signature"]["key_id"], pub.id());

  json v = get_json(router, "/api/ui/verify", {{"ckpt", "a"}}, 200);
  EXPECT_TRUE(v["hashes"]["ok"]);
  EXPECT_EQ(v["hashes"]["tensors_checked"], 2);
  EXPECT_FALSE(v["signature"]["checked"]);  // no key given to this router

  Router keyed;
  ckpt::serve::UiOptions o;
  o.pubkey = pub;
  ckpt::serve::add_ui_routes(keyed, [this] { return served; }, o);
  json k = get_json(keyed, "/api/ui/verify", {{"ckpt", "a"}}, 200);
  EXPECT_TRUE(k["signature"]["checked"]);
  EXPECT_TRUE(k["signature"]["ok"]) << k.dump();

  auto [other_secret, other_pub] = ckpt::generate_key_pair();
  Router wrong;
  o.pubkey = other_pub;
  ckpt::serve::add_ui_routes(wrong, [this] { return served; }, o);
  json w = get_json(wrong, "/api/ui/verify", {{"ckpt", "a"}}, 200);
  EXPECT_FALSE(w["signature"]["ok"]);
  EXPECT_FALSE(w["signature"]["problems"].empty());
}

TEST_F(UiApi, DamagedTensorIsAFindingOfTheHashCheck) {
  // One float changed in the JSON file's base64 data: the record still parses, the hash does not match.
  ckpt::Document doc = ckpt::read_document(dir / "b.json");
  std::vector<float> w(12, 7.0f);
  doc.group("model").group("state").set_tensor("fc1.weight", f32({4, 3}, w));
  ckpt::write_document(doc, dir / "damaged.json");
  served.push_back({"damaged", 1, (dir / "damaged.json").string(), (dir / "damaged.json").string(), nullptr});
  json v = get_json(router, "/api/ui/verify", {{"ckpt", "damaged"}}, 200);
  EXPECT_FALSE(v["hashes"]["ok"]);
  ASSERT_FALSE(v["hashes"]["problems"].empty());
  EXPECT_NE(v["hashes"]["problems"][0].get<std::string>().find("fc1.weight"), std::string::npos) << v.dump();
}

TEST_F(UiApi, DiffSortsByChangeAndMarksWhatDiffers) {
  json d = get_json(router, "/api/ui/diff", {{"a", "a"}, {"b", "b"}}, 200);
  EXPECT_FALSE(d["identical"]);
  const json& rows = d["tensors"];
  ASSERT_EQ(rows.size(), 3u);
  // Structural first (only in B), then the changed weight, then the unchanged bias.
  EXPECT_EQ(rows[0]["path"], "model/state/fc2.weight");
  EXPECT_EQ(rows[0]["kind"], "only_in_b");
  EXPECT_TRUE(rows[0]["differs"]);
  EXPECT_EQ(rows[1]["path"], "model/state/fc1.weight");
  EXPECT_EQ(rows[1]["kind"], "values_differ");
  EXPECT_TRUE(rows[1]["differs"]);
  // Element 5 moved from 0.25 by 0.5; the largest magnitude in A is 1.75.
  EXPECT_NEAR(rows[1]["max_abs"].get<double>(), 0.5, 1e-7);
  EXPECT_NEAR(rows[1]["max_rel"].get<double>(), 0.5 / 1.75, 1e-7);
  EXPECT_EQ(rows[2]["path"], "model/state/fc1.bias");
  EXPECT_FALSE(rows[2]["differs"]);
  EXPECT_EQ(d["tensors_differing"], 2);

  // Two files of the training folder, named by their bare names.
  json f = get_json(router, "/api/ui/diff",
                    {{"a", "run"}, {"afile", "step-000000010.msgpack"}, {"b", "run"}, {"bfile", "step-000000030.msgpack"}}, 200);
  ASSERT_FALSE(f["tensors"].empty());
  EXPECT_EQ(f["tensors"][0]["path"], "model/state/fc1.weight");
  EXPECT_NEAR(f["tensors"][0]["max_abs"].get<double>(), 0.2, 1e-6);
  // The trainer's numbers differ too: reported beside the tensors.
  EXPECT_FALSE(f["other"].empty());

  json same = get_json(router, "/api/ui/diff", {{"a", "a"}, {"b", "a"}}, 200);
  EXPECT_TRUE(same["identical"]);
  EXPECT_EQ(same["tensors_differing"], 0);
}

TEST_F(UiApi, MetricsOfEveryCheckpointOfATrainingFolder) {
  json m = get_json(router, "/api/ui/metrics", {{"ckpt", "run"}}, 200);
  ASSERT_EQ(m["points"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json& p = m["points"][static_cast<size_t>(i)];
    EXPECT_EQ(p["step"], (i + 1) * 10);
    EXPECT_EQ(p["metrics"]["epoch"], i + 1);
    EXPECT_DOUBLE_EQ(p["metrics"]["train_loss"].get<double>(), 1.0 / (i + 2));
    EXPECT_DOUBLE_EQ(p["metrics"]["test_accuracy"].get<double>(), 0.45 + 0.1 * (i + 1));
  }
  EXPECT_TRUE(m["errors"].empty());
  // A checkpoint that cannot be read costs its point only.
  { std::ofstream(dir / "run" / "step-000000040.msgpack") << "not a checkpoint"; }
  json m2 = get_json(router, "/api/ui/metrics", {{"ckpt", "run"}}, 200);
  EXPECT_EQ(m2["points"].size(), 3u);
  ASSERT_EQ(m2["errors"].size(), 1u);
  EXPECT_EQ(m2["errors"][0]["file"], "step-000000040.msgpack");

  json none = get_json(router, "/api/ui/metrics", {{"ckpt", "a"}}, 404);
  EXPECT_NE(none["error"].get<std::string>().find("training folder"), std::string::npos);
}

TEST_F(UiApi, QueryParametersAreValidated) {
  get_json(router, "/api/ui/tree", {}, 400);
  get_json(router, "/api/ui/tree", {{"ckpt", "nope"}}, 404);
  get_json(router, "/api/ui/tree", {{"ckpt", "a"}, {"version", "2"}}, 404);
  get_json(router, "/api/ui/tree", {{"ckpt", "a"}, {"version", "1"}}, 200);
  for (const char* bad : {"x", "", "1.5", "-1", " 1", "1 ", "99999999999999999999999"})
    get_json(router, "/api/ui/tree", {{"ckpt", "a"}, {"version", bad}}, 400);
  const std::map<std::string, std::string> w{{"ckpt", "a"}, {"tensor", "model/state/fc1.weight"}};
  auto with = [&](std::string k, std::string v) {
    auto q = w;
    q[k] = v;
    return q;
  };
  get_json(router, "/api/ui/stats", w, 200);
  for (const char* bad : {"0", "1025", "abc", "64x", "-3"}) get_json(router, "/api/ui/stats", with("bins", bad), 400);
  get_json(router, "/api/ui/stats", with("bins", "1024"), 200);
  get_json(router, "/api/ui/stats", {{"ckpt", "a"}}, 400);
  for (const char* bad : {"model/state/nope", "model/state", "/model/state/fc1.weight", "model/state/fc1.weight/",
                          "../a.msgpack"})
    get_json(router, "/api/ui/stats", with("tensor", bad), 404);
  // Files: only the folder's own checkpoint names, never a path.
  for (const char* bad : {"../a.msgpack", "/etc/passwd", "step-000000010.msgpack/..", "a.msgpack", ".", ""})
    if (std::string(bad).empty())
      get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", bad}}, 200);  // empty: the served one
    else
      get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", bad}}, 404);
  get_json(router, "/api/ui/tree", {{"ckpt", "a"}, {"file", "step-000000010.msgpack"}}, 404);
  get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", "step-000000010.msgpack"}}, 200);
  get_json(router, "/api/ui/diff", {{"a", "a"}}, 400);
  get_json(router, "/api/ui/diff", {{"a", "a"}, {"b", "zzz"}}, 404);
  get_json(router, "/api/ui/nothing", {}, 404);
}

TEST_F(UiApi, LinksInATrainingFolderAreNotListed) {
  fs::create_symlink(dir / "a.msgpack", dir / "run" / "step-000000099.msgpack");
  json j = get_json(router, "/api/ui/checkpoints", {}, 200);
  EXPECT_EQ(j["checkpoints"][0]["files"].size(), 3u);
  get_json(router, "/api/ui/tree", {{"ckpt", "run"}, {"file", "step-000000099.msgpack"}}, 404);
}

TEST_F(UiApi, UnreadableFileIsAJsonErrorAndTheRouterKeepsAnswering) {
  { std::ofstream(dir / "junk.msgpack") << "\x93junk"; }
  served.push_back({"junk", 1, (dir / "junk.msgpack").string(), (dir / "junk.msgpack").string(), nullptr});
  auto r = get(router, "/api/ui/tree", {{"ckpt", "junk"}});
  EXPECT_GE(r.status, 400);
  EXPECT_TRUE(json::parse(r.body).contains("error"));
  served.push_back({"gone", 1, (dir / "gone.msgpack").string(), (dir / "gone.msgpack").string(), nullptr});
  r = get(router, "/api/ui/tree", {{"ckpt", "gone"}});
  EXPECT_GE(r.status, 400);
  EXPECT_TRUE(json::parse(r.body).contains("error"));
  get_json(router, "/api/ui/tree", {{"ckpt", "a"}}, 200);
}

TEST_F(UiApi, InMemoryCheckpointWithoutAFile) {
  auto c = std::make_shared<ckpt::Checkpoint>(small_checkpoint(2, 0.0f));
  served.push_back({"memory", 7, "registry:mlp@prod", "", c});
  json t = get_json(router, "/api/ui/tree", {{"ckpt", "memory"}}, 200);
  EXPECT_EQ(t["format"], "memory");
  EXPECT_EQ(t["version"], 7);
  json s = get_json(router, "/api/ui/stats", {{"ckpt", "memory"}, {"tensor", "model/state/fc1.bias"}}, 200);
  EXPECT_EQ(s["min"], 0.0);
  EXPECT_EQ(s["max"], 3.0);
  EXPECT_DOUBLE_EQ(s["mean"].get<double>(), 1.5);
  json d = get_json(router, "/api/ui/diff", {{"a", "memory"}, {"b", "a"}}, 200);
  EXPECT_EQ(d["tensors"].size(), 2u);
}

TEST_F(UiApi, TensorsPastTheLimitAreRefusedBeforeAnyRead) {
  // A 1 GiB + 1 tensor over pages that are never touched: refused by size, its bytes never read.
  const size_t n = (size_t{1} << 30) + 1;
  void* pages = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(pages, MAP_FAILED);
  {
    auto c = std::make_shared<ckpt::Checkpoint>();
    c->model_state.add_tensor("huge", ckpt::Tensor::borrow(ckpt::DType::u8, {static_cast<int64_t>(n)}, static_cast<const void*>(pages)));
    served.push_back({"huge", 1, "memory", "", c});
    json t = get_json(router, "/api/ui/tree", {{"ckpt", "huge"}}, 200);
    EXPECT_EQ(t["schema"]["parts"][1]["bytes"], n);
    json s = get_json(router, "/api/ui/stats", {{"ckpt", "huge"}, {"tensor", "model/state/huge"}}, 413);
    EXPECT_NE(s["error"].get<std::string>().find("more than the page reads at once"), std::string::npos) << s.dump();
    get_json(router, "/api/ui/verify", {{"ckpt", "huge"}}, 413);
    get_json(router, "/api/ui/diff", {{"a", "huge"}, {"b", "a"}}, 413);
    served.pop_back();
  }
  ::munmap(pages, n);
  get_json(router, "/api/ui/stats", {{"ckpt", "a"}, {"tensor", "model/state/fc1.bias"}}, 200);
}

TEST_F(UiApi, NamesThatAreNotUtf8AreReplacedNotRefused) {
  auto c = std::make_shared<ckpt::Checkpoint>();
  c->model_state.add_tensor("bad\xff\xfename", f32({2}, {1.0f, 2.0f}));
  served.push_back({"bytes", 1, "memory", "", c});
  auto r = get(router, "/api/ui/tree", {{"ckpt", "bytes"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("bad\xef\xbf\xbd\xef\xbf\xbdname"), std::string::npos) << r.body;  // U+FFFD twice
  const json j = json::parse(r.body);  // valid JSON, the name a string in it
  EXPECT_EQ(j["tree"]["children"][1]["children"][1]["children"][0]["name"], "bad\xef\xbf\xbd\xef\xbf\xbdname") << r.body;
}

TEST_F(UiApi, PageAndAssetsWithContentTypesAndAPolicyAgainstRemoteScripts) {
  auto page = get(router, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"/app.js\""), std::string::npos);
  const std::string csp = header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(header(page, "X-Content-Type-Options"), "nosniff");
  auto js = get(router, "/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js.body.find("textContent"), std::string::npos);
  EXPECT_EQ(js.body.find("innerHTML"), std::string::npos);
  EXPECT_EQ(get(router, "/style.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(get(router, "/favicon.svg").content_type, "image/svg+xml");
  auto missing = get(router, "/nothing.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(json::parse(missing.body).contains("error"));
  EXPECT_FALSE(header(get(router, "/api/ui/checkpoints"), "Content-Security-Policy").empty());
}

}  // namespace
