// TensorFlow Serving's REST API served in-process on an ephemeral loopback port: predictions
// bit-equal to `ckpt predict`, the documentation's request bodies, status, metadata, metrics.
#include "serve_support.hpp"

#include <ckpt/serve/http_server.hpp>
#include <ckpt/serve/model_server.hpp>
#include <ckpt/train/data.hpp>

#include <algorithm>
#include <map>
#include <thread>

namespace ckpt_test {
namespace {

using namespace ckpt::serve;

class RestApi : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(ServeOptions o, ServerOptions so = {}) {
    http_.reset();
    models_.reset();
    o.poll_interval = std::chrono::milliseconds(0);
    models_ = std::make_unique<ModelServer>(std::vector<ModelArgument>{{"mlp", trained_run().epoch2.string()}}, o);
    auto router = std::make_shared<Router>();
    models_->add_routes(*router);
    so.port = 0;
    http_ = std::make_unique<HttpServer>(router, so);
  }
  uint16_t port() const { return http_->port(); }

  std::unique_ptr<ModelServer> models_;
  std::unique_ptr<HttpServer> http_;
};

ckpt::train::Dataset test_images(size_t n) { return ckpt::train::load_fashion_mnist(kFashionMnist, "test", n); }

void expect_bit_equal(const nlohmann::json& rows, const std::vector<std::vector<float>>& expected, size_t first = 0) {
  ASSERT_TRUE(rows.is_array());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), expected[first + i].size()) << "row " << i;
    for (size_t k = 0; k < rows[i].size(); ++k)
      EXPECT_EQ(bits(rows[i][k].get<float>()), bits(expected[first + i][k]))
          << "row " << i << " logit " << k << ": " << rows[i][k] << " served, " << expected[first + i][k] << " by ckpt predict";
  }
}

TEST_F(RestApi, PredictionsEqualCkptPredictBitForBit) {
  const int n = 8;
  const auto expected = ckpt_predict(trained_run().epoch2, n);
  ASSERT_EQ(expected.size(), static_cast<size_t>(n));
  auto ds = test_images(n);
  const size_t px = static_cast<size_t>(ds.rows * ds.cols);
  // All images in one request: the same batch ckpt predict runs.
  auto r = http_request(port(), "POST", "/v1/models/mlp:predict", R"({"instances": )" + json_rows(ds.images, px, n) + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  expect_bit_equal(r.json().at("predictions"), expected);
  // The columnar form answers the same numbers under "outputs".
  r = http_request(port(), "POST", "/v1/models/mlp/versions/1:predict", R"({"inputs": )" + json_rows(ds.images, px, n) + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  expect_bit_equal(r.json().at("outputs"), expected);
}

// Requests of `rows[i]` rows (the first rows[i] test images each), sent at once from threads.
std::vector<HttpReply> concurrent_predicts(uint16_t port, const std::vector<int>& rows) {
  auto ds = test_images(static_cast<size_t>(*std::max_element(rows.begin(), rows.end())));
  std::vector<std::thread> clients;
  std::vector<HttpReply> replies(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    clients.emplace_back([&, i] {
      replies[i] = http_request(port, "POST", "/v1/models/mlp:predict",
                                R"({"instances": )" + json_rows(ds.images, 784, static_cast<size_t>(rows[i])) + "}");
    });
  for (auto& t : clients) t.join();
  return replies;
}

TEST_F(RestApi, ExactBatchingAnswersEqualCkptPredictUnderConcurrency) {
  // Requests of many sizes at once: each answer equals ckpt predict over the same images,
  // whatever it was batched with.
  ServeOptions o;
  o.max_batch = 32;
  o.batch_timeout = std::chrono::microseconds(20000);
  start(o);
  const std::vector<int> sizes = {1, 3, 5, 1, 8, 16, 20, 2, 7, 17, 1, 4};
  std::map<int, std::vector<std::vector<float>>> expected;
  for (int n : sizes) expected[n] = ckpt_predict(trained_run().epoch2, n);
  auto replies = concurrent_predicts(port(), sizes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    SCOPED_TRACE("a request of " + std::to_string(sizes[i]) + " rows");
    expect_bit_equal(replies[i].json().at("predictions"), expected[sizes[i]]);
  }
}

TEST_F(RestApi, ExactBatchingPutsRequestsOfOneKernelClassTogether) {
  // Two requests of 4 rows and room for 8: the batcher waits (up to 5 s) for the second and
  // runs both as one batch of 8, which rounds as a batch of 4 does.
  ServeOptions o;
  o.max_batch = 8;
  o.batch_timeout = std::chrono::microseconds(5000000);
  start(o);
  const auto expected = ckpt_predict(trained_run().epoch2, 4);
  auto replies = concurrent_predicts(port(), {4, 4});
  for (const auto& r : replies) {
    ASSERT_EQ(r.status, 200) << r.body;
    expect_bit_equal(r.json().at("predictions"), expected);
  }
  const std::string m = models_->metrics_text();
  EXPECT_NE(m.find("ckpt_serve_batch_size_count{model=\"mlp\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_batch_size_sum{model=\"mlp\"} 8\n"), std::string::npos) << m;
}

TEST_F(RestApi, AnyBatchingPutsOneRowRequestsTogether) {
  // TF Serving's way: eight one-row requests run as one batch of 8; each gets its own image's
  // logits, close to (not necessarily bit-equal with) a lone run.
  ServeOptions o;
  o.max_batch = 8;
  o.batch_timeout = std::chrono::microseconds(5000000);
  o.exact_batching = false;
  start(o);
  const int n = 8;
  const auto expected = ckpt_predict(trained_run().epoch2, n);
  auto ds = test_images(n);
  std::vector<std::thread> clients;
  std::vector<HttpReply> replies(n);
  for (size_t i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      std::vector<float> one(ds.images.begin() + static_cast<ptrdiff_t>(i * 784), ds.images.begin() + static_cast<ptrdiff_t>((i + 1) * 784));
      replies[i] = http_request(port(), "POST", "/v1/models/mlp:predict", R"({"instances": )" + json_rows(one, 784, 1) + "}");
    });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    auto row = replies[i].json().at("predictions").at(0);
    ASSERT_EQ(row.size(), expected[i].size());
    for (size_t k = 0; k < row.size(); ++k) EXPECT_NEAR(row[k].get<float>(), expected[i][k], 1e-4) << i << " " << k;
  }
  const std::string m = models_->metrics_text();
  EXPECT_NE(m.find("ckpt_serve_batch_size_count{model=\"mlp\"} 1\n"), std::string::npos) << m;
}

TEST(RestApiConvNet, NestedInputsAndAnswersEqualCkptPredict) {
  // Rows of shape [1, 28, 28], in requests of several sizes at once, exact batching.
  ServeOptions o;
  o.poll_interval = std::chrono::milliseconds(0);
  o.batch_timeout = std::chrono::microseconds(20000);
  ModelServer models({{"mlp", trained_convnet().string()}}, o);
  auto router = std::make_shared<Router>();
  models.add_routes(*router);
  ServerOptions so;
  so.port = 0;
  HttpServer http(router, so);
  auto meta = http_request(http.port(), "GET", "/v1/models/mlp/metadata").json();
  EXPECT_EQ(meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["input"]["tensor_shape"]["dim"].size(), 4u);
  const std::vector<int> sizes = {1, 2, 5, 16, 3, 17};
  auto ds = test_images(17);
  auto nested = [&](int n) {
    std::string s = "[";
    char buf[32];
    for (int i = 0; i < n; ++i) {
      s += i ? ",[[" : "[[";
      for (int r = 0; r < 28; ++r) {
        s += r ? ",[" : "[";
        for (int c = 0; c < 28; ++c) {
          std::snprintf(buf, sizeof buf, c ? ",%.9g" : "%.9g", static_cast<double>(ds.images[static_cast<size_t>(i * 784 + r * 28 + c)]));
          s += buf;
        }
        s += "]";
      }
      s += "]]";
    }
    return s + "]";
  };
  std::vector<HttpReply> replies(sizes.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < sizes.size(); ++i)
    clients.emplace_back([&, i] {
      replies[i] = http_request(http.port(), "POST", "/v1/models/mlp:predict", R"({"instances": )" + nested(sizes[i]) + "}");
    });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].body;
    SCOPED_TRACE("a request of " + std::to_string(sizes[i]) + " images");
    expect_bit_equal(replies[i].json().at("predictions"), ckpt_predict(trained_convnet(), sizes[i]));
  }
  // A flat row is the wrong shape for this model.
  auto r = http_request(http.port(), "POST", "/v1/models/mlp:predict", R"({"instances": )" + json_rows(ds.images, 784, 1) + "}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json()["error"].get<std::string>().find("instances[0]: expected an array of shape [1, 28, 28]"), std::string::npos) << r.body;
}

TEST_F(RestApi, TensorFlowServingDocumentationBodies) {
  auto ds = test_images(2);
  const size_t px = static_cast<size_t>(ds.rows * ds.cols);
  const std::string rows = json_rows(ds.images, px, 2);
  // The row format with a signature name, as the RESTful API page shows it.
  auto r = http_request(port(), "POST", "/v1/models/mlp:predict",
                        R"({"signature_name": "serving_default", "instances": )" + rows + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("predictions").size(), 2u);
  // Named inputs in each instance, and the columnar format with named inputs.
  std::vector<float> first(ds.images.begin(), ds.images.begin() + static_cast<ptrdiff_t>(px));
  const std::string one = json_rows(first, px, 1);
  r = http_request(port(), "POST", "/v1/models/mlp:predict", R"({"instances": [{"input": )" + one.substr(1, one.size() - 2) + "}]}");
  ASSERT_EQ(r.status, 200) << r.body;
  r = http_request(port(), "POST", "/v1/models/mlp:predict", R"({"signature_name": "", "inputs": {"input": )" + rows + "}}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("outputs").size(), 2u);
}

TEST_F(RestApi, StatusAndMetadata) {
  auto r = http_request(port(), "GET", "/v1/models/mlp");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  // A file is served as version 1 (a training folder's versions are steps).
  ASSERT_EQ(j.at("model_version_status").size(), 1u);
  EXPECT_EQ(j["model_version_status"][0]["version"], "1");
  EXPECT_EQ(j["model_version_status"][0]["state"], "AVAILABLE");
  EXPECT_EQ(j["model_version_status"][0]["status"]["error_code"], "OK");
  r = http_request(port(), "GET", "/v1/models/mlp/versions/1");
  EXPECT_EQ(r.status, 200) << r.body;
  r = http_request(port(), "GET", "/v1/models/mlp/versions/2");
  EXPECT_EQ(r.status, 404) << r.body;
  r = http_request(port(), "GET", "/v1/models/mlp/metadata");
  ASSERT_EQ(r.status, 200) << r.body;
  j = r.json();
  EXPECT_EQ(j["model_spec"]["name"], "mlp");
  EXPECT_EQ(j["model_spec"]["version"], "1");
  auto sig = j["metadata"]["signature_def"]["signature_def"]["serving_default"];
  EXPECT_EQ(sig["inputs"]["input"]["dtype"], "DT_FLOAT");
  EXPECT_EQ(sig["inputs"]["input"]["tensor_shape"]["dim"].size(), 2u);
  EXPECT_EQ(sig["inputs"]["input"]["tensor_shape"]["dim"][0]["size"], "-1");
  EXPECT_EQ(sig["inputs"]["input"]["tensor_shape"]["dim"][1]["size"], "784");
  EXPECT_EQ(sig["outputs"]["output"]["tensor_shape"]["dim"][1]["size"], "10");
  EXPECT_EQ(sig["method_name"], "tensorflow/serving/predict");
  EXPECT_EQ(j["ckpt"]["step"], 16);
}

TEST_F(RestApi, MetricsInPrometheusTextFormat) {
  auto ds = test_images(1);
  http_request(port(), "POST", "/v1/models/mlp:predict", R"({"instances": )" + json_rows(ds.images, 784, 1) + "}");
  http_request(port(), "POST", "/v1/models/mlp:predict", "not json");
  http_request(port(), "POST", "/v1/models/nope:predict", "{}");
  auto r = http_request(port(), "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = r.body;
  EXPECT_NE(m.find("# TYPE ckpt_serve_requests_total counter"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_requests_total{model=\"mlp\",api=\"predict\",code=\"200\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_requests_total{model=\"mlp\",api=\"predict\",code=\"400\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_request_errors_total{model=\"\",code=\"404\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_predict_latency_seconds_bucket{model=\"mlp\",le=\"+Inf\"} 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_batch_size_bucket{model=\"mlp\",le=\"1\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_model_version{model=\"mlp\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ckpt_serve_model_load_failures_total{model=\"mlp\"} 0\n"), std::string::npos) << m;
}

}  // namespace
}  // namespace ckpt_test
