// Hot swap: a training folder serves its newest checkpoint that verifies; a newer one that
// appears is swapped in while a client keeps sending (no request fails), and one that fails
// verification (damaged, or unsigned when a key is required) is reported and not swapped in.
#include "serve_support.hpp"

#include <ckpt/io.hpp>
#include <ckpt/registry/model_registry.hpp>
#include <ckpt/serve/http_server.hpp>
#include <ckpt/serve/model_server.hpp>
#include <ckpt/train/data.hpp>

#include <atomic>
#include <thread>

namespace ckpt_test {
namespace {

using namespace ckpt::serve;

// Copies `from` into `dir` as `name` the way a save does: a temporary, then a rename.
void place(const fs::path& from, const fs::path& dir, const std::string& name) {
  fs::copy_file(from, dir / ("." + name + ".tmp"), fs::copy_options::overwrite_existing);
  fs::rename(dir / ("." + name + ".tmp"), dir / name);
}

struct Served {
  std::unique_ptr<ModelServer> models;
  std::unique_ptr<HttpServer> http;
  Served(const fs::path& folder, ServeOptions o) {
    models = std::make_unique<ModelServer>(std::vector<ModelArgument>{{"mlp", folder.string()}}, o);
    auto router = std::make_shared<Router>();
    models->add_routes(*router);
    ServerOptions so;
    so.port = 0;
    http = std::make_unique<HttpServer>(router, so);
  }
  int64_t version() const {
    auto r = http_request(http->port(), "GET", "/v1/models/mlp");
    return std::stoll(r.json()["model_version_status"][0]["version"].get<std::string>());
  }
};

std::string eight_images() {
  auto ds = ckpt::train::load_fashion_mnist(kFashionMnist, "test", 8);
  return R"({"instances": )" + json_rows(ds.images, 784, 8) + "}";
}

bool equal_rows(const nlohmann::json& rows, const std::vector<std::vector<float>>& expected) {
  if (rows.size() != expected.size()) return false;
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t k = 0; k < expected[i].size(); ++k)
      if (bits(rows[i][k].get<float>()) != bits(expected[i][k])) return false;
  return true;
}

TEST(HotSwap, ANewerCheckpointIsSwappedInUnderLoadWithNoFailedRequest) {
  TempDir dir("serve-swap");
  place(trained_run().epoch1, dir.path, "step-000000008.msgpack");
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(50);
  Served s(dir.path, o);
  ASSERT_EQ(s.version(), 8);
  const auto before = ckpt_predict(trained_run().epoch1, 8), after = ckpt_predict(trained_run().epoch2, 8);
  const std::string body = eight_images();

  std::atomic<bool> stop{false};
  std::atomic<int> ok_before{0}, ok_after{0}, failed{0};
  std::string first_failure;
  std::thread client([&] {
    HttpClient c(s.http->port());  // one keep-alive connection, one request at a time: batches of 8
    while (!stop) {
      try {
        HttpReply r = c.request("POST", "/v1/models/mlp:predict", body);
        auto rows = r.status == 200 ? r.json().at("predictions") : nlohmann::json();
        if (r.status == 200 && equal_rows(rows, before))
          ++ok_before;
        else if (r.status == 200 && equal_rows(rows, after))
          ++ok_after;
        else if (failed++ == 0)
          first_failure = std::to_string(r.status) + " " + r.body.substr(0, 300);
      } catch (const std::exception& e) {
        if (failed++ == 0) first_failure = e.what();
      }
    }
  });
  // Some requests on the first version, then the second appears.
  while (ok_before < 20 && failed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  place(trained_run().epoch2, dir.path, "step-000000016.msgpack");
  // Bounded wait for the poller (50 ms) to swap it in.
  for (int i = 0; i < 600 && ok_after < 20 && failed == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  client.join();
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GE(ok_before.load(), 20);
  EXPECT_GE(ok_after.load(), 20);
  EXPECT_EQ(s.version(), 16);
  const std::string m = s.models->metrics_text();
  EXPECT_NE(m.find("ckpt_serve_model_version{model=\"mlp\"} 16\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_model_swaps_total{model=\"mlp\"} 1\n"), std::string::npos) << m;
  // What is served names the new file.
  auto list = s.models->served()();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].version, 16);
  EXPECT_EQ(fs::path(list[0].path).filename(), "step-000000016.msgpack");
  ASSERT_TRUE(list[0].checkpoint);
}

TEST(HotSwap, ACheckpointThatFailsVerificationIsNotSwappedIn) {
  TempDir dir("serve-damaged");
  place(trained_run().epoch1, dir.path, "step-000000008.msgpack");
  std::vector<std::string> log;
  std::mutex log_mu;
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);  // polled by the test
  o.log = [&](const std::string& line) {
    std::lock_guard lock(log_mu);
    if (line.find("not loaded") != std::string::npos) log.push_back(line);
  };
  Served s(dir.path, o);

  // Epoch 2's checkpoint with one weight changed after its hashes were recorded.
  ckpt::LoadOptions lo;
  lo.map = false;
  ckpt::Document doc = ckpt::read_document(trained_run().epoch2, lo);
  ckpt::Tensor* w = doc.group("model").group("state").find_tensor("fc1.weight");
  ASSERT_NE(w, nullptr);
  w->mutable_data<float>()[3] += 1.0f;
  ckpt::write_document(doc, dir / ".damaged.msgpack");
  fs::rename(dir / ".damaged.msgpack", dir / "step-000000020.msgpack");
  // And a file that is not a checkpoint at all.
  { std::ofstream(dir / "step-000000030.msgpack") << "not msgpack"; }

  EXPECT_EQ(s.models->poll_now(), 0u);
  EXPECT_EQ(s.version(), 8);
  EXPECT_EQ(s.models->poll_now(), 0u);  // tried once, not again
  auto status = http_request(s.http->port(), "GET", "/v1/models/mlp").json()["model_version_status"];
  ASSERT_EQ(status.size(), 2u) << status;
  EXPECT_EQ(status[0]["state"], "AVAILABLE");
  EXPECT_EQ(status[1]["state"], "END");
  EXPECT_EQ(status[1]["status"]["error_code"], "UNKNOWN");
  auto failed20 = http_request(s.http->port(), "GET", "/v1/models/mlp/versions/20").json()["model_version_status"];
  EXPECT_NE(failed20[0]["status"]["error_message"].get<std::string>().find("fc1.weight"), std::string::npos) << failed20;
  const std::string m = s.models->metrics_text();
  EXPECT_NE(m.find("ckpt_serve_model_load_failures_total{model=\"mlp\"} 2\n"), std::string::npos) << m;
  {
    std::lock_guard lock(log_mu);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_NE(log[0].find("version 30 not loaded, still serving 8"), std::string::npos) << log[0];
    EXPECT_NE(log[1].find("version 20 not loaded, still serving 8"), std::string::npos) << log[1];
  }
  // Predictions are still epoch 1's.
  auto r = http_request(s.http->port(), "POST", "/v1/models/mlp:predict", eight_images());
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(equal_rows(r.json()["predictions"], ckpt_predict(trained_run().epoch1, 8)));

  // A good newer one is still taken.
  place(trained_run().epoch2, dir.path, "step-000000040.msgpack");
  EXPECT_EQ(s.models->poll_now(), 1u);
  EXPECT_EQ(s.version(), 40);
}

TEST(HotSwap, WithAKeyOnlySignedCheckpointsAreServed) {
  TempDir dir("serve-signed");
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_CLI) + " keygen " + (dir / "key").string(), out), 0) << out;
  fs::create_directories(dir / "run");
  place(trained_run().epoch1, dir / "run", "step-000000008.msgpack");
  ASSERT_EQ(run(std::string(CKPT_CLI) + " sign " + (dir / "run" / "step-000000008.msgpack").string() + " --key " + (dir / "key").string(), out), 0) << out;
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  o.pubkey = ckpt::read_public_key(dir / "key.pub");
  Served s(dir / "run", o);
  EXPECT_EQ(s.version(), 8);
  auto meta = http_request(s.http->port(), "GET", "/v1/models/mlp/metadata").json();
  EXPECT_NE(meta["ckpt"]["signature"].get<std::string>().find("valid"), std::string::npos) << meta;
  // Unsigned: refused.
  place(trained_run().epoch2, dir / "run", "step-000000016.msgpack");
  EXPECT_EQ(s.models->poll_now(), 0u);
  EXPECT_EQ(s.version(), 8);
  // Signed: taken.
  place(trained_run().epoch2, dir / "run", "step-000000024.msgpack");
  ASSERT_EQ(run(std::string(CKPT_CLI) + " sign " + (dir / "run" / "step-000000024.msgpack").string() + " --key " + (dir / "key").string(), out), 0) << out;
  EXPECT_EQ(s.models->poll_now(), 1u);
  EXPECT_EQ(s.version(), 24);
}

// A checkpoint that appears before its signature (the trainer saves, then `ckpt sign` runs) is
// refused at first; once signed it must be taken, though the checkpoint file itself is unchanged.
TEST(HotSwap, ACheckpointSignedAfterItAppearsIsServed) {
  TempDir dir("serve-sign-later");
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_CLI) + " keygen " + (dir / "key").string(), out), 0) << out;
  fs::create_directories(dir / "run");
  place(trained_run().epoch1, dir / "run", "step-000000008.msgpack");
  ASSERT_EQ(run(std::string(CKPT_CLI) + " sign " + (dir / "run" / "step-000000008.msgpack").string() + " --key " + (dir / "key").string(), out), 0) << out;
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  o.pubkey = ckpt::read_public_key(dir / "key.pub");
  Served s(dir / "run", o);
  place(trained_run().epoch2, dir / "run", "step-000000016.msgpack");
  EXPECT_EQ(s.models->poll_now(), 0u);
  EXPECT_EQ(s.version(), 8);
  ASSERT_EQ(run(std::string(CKPT_CLI) + " sign " + (dir / "run" / "step-000000016.msgpack").string() + " --key " + (dir / "key").string(), out), 0) << out;
  EXPECT_EQ(s.models->poll_now(), 1u);
  EXPECT_EQ(s.version(), 16);
}

// A link in a training folder is not a checkpoint of that run: one named as a newer step and
// pointing outside the folder is ignored, as the web page ignores links.
TEST(HotSwap, LinksInATrainingFolderAreNotServed) {
  TempDir dir("serve-links");
  fs::create_directories(dir / "run");
  place(trained_run().epoch1, dir / "run", "step-000000008.msgpack");
  fs::create_symlink(trained_run().epoch2, dir / "run" / "step-000000099.msgpack");
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  Served s(dir / "run", o);
  EXPECT_EQ(s.version(), 8);
  EXPECT_EQ(s.models->poll_now(), 0u);
  // A folder holding only a link is no training folder.
  fs::create_directories(dir / "only-link");
  fs::create_symlink(trained_run().epoch2, dir / "only-link" / "step-000000016.msgpack");
  EXPECT_ANY_THROW(ModelServer(std::vector<ModelArgument>{{"m", (dir / "only-link").string()}}, o));
}

// "registry:" always names the registry, even when a file of that name exists in the working
// folder (as every other ckpt command reads it); "./registry:..." names the file.
TEST(HotSwap, RegistryPrefixAlwaysNamesTheRegistry) {
  TempDir dir("serve-registry-prefix");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path);
  struct Back {
    fs::path to;
    ~Back() { fs::current_path(to); }
  } back{cwd};
  fs::copy_file(trained_run().epoch1, dir / "registry:mlp@production");
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  o.registry_uri = "sqlite://" + (dir / "empty.db").string();
  EXPECT_ANY_THROW(ModelServer(std::vector<ModelArgument>{{"m", "registry:mlp@production"}}, o));
  ModelServer file(std::vector<ModelArgument>{{"m", "./registry:mlp@production"}}, o);
  ASSERT_EQ(file.served()().size(), 1u);
  EXPECT_EQ(file.served()()[0].path, "./registry:mlp@production");
}

TEST(HotSwap, ARegistryAliasIsFollowedWhenItMoves) {
  namespace mr = ckpt::model_registry;
  TempDir dir("serve-registry");
  const std::string uri = "sqlite://" + (dir / "reg.db").string();
  auto reg = mr::ModelRegistry::open(uri, mr::ModelRegistry::Open::create);
  mr::RegisterOptions ro;
  ro.name = "mlp";
  ro.aliases = {"production"};
  ro.fsync = false;
  ASSERT_EQ(reg->register_checkpoint(trained_run().epoch1, ro).version, 1);
  ro.aliases.clear();
  ASSERT_EQ(reg->register_checkpoint(trained_run().epoch2, ro).version, 2);

  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  o.registry_uri = uri;
  auto models = std::make_unique<ModelServer>(std::vector<ModelArgument>{{"m", "registry:mlp@production"}}, o);
  auto router = std::make_shared<Router>();
  models->add_routes(*router);
  ServerOptions so;
  so.port = 0;
  HttpServer http(router, so);
  auto version = [&] {
    return http_request(http.port(), "GET", "/v1/models/m").json()["model_version_status"][0]["version"].get<std::string>();
  };
  EXPECT_EQ(version(), "1");
  // The alias is the model's label.
  auto r = http_request(http.port(), "POST", "/v1/models/m/labels/production:predict", eight_images());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(equal_rows(r.json()["predictions"], ckpt_predict(trained_run().epoch1, 8)));
  EXPECT_EQ(http_request(http.port(), "POST", "/v1/models/m/labels/staging:predict", eight_images()).status, 404);
  EXPECT_EQ(models->poll_now(), 0u);  // the alias has not moved

  reg->set_alias("mlp", "production", 2);
  EXPECT_EQ(models->poll_now(), 1u);
  EXPECT_EQ(version(), "2");
  r = http_request(http.port(), "POST", "/v1/models/m/versions/2:predict", eight_images());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(equal_rows(r.json()["predictions"], ckpt_predict(trained_run().epoch2, 8)));
  auto served = models->served()();
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0].path, "registry:mlp/2");
  EXPECT_EQ(served[0].source, "registry:mlp@production");
}

}  // namespace
}  // namespace ckpt_test
