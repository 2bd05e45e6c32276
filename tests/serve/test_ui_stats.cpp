// Tensor statistics of the web page's API against numpy, over a state dict torch.save wrote
// (several dtypes, NaN, infinities, zeros, a constant tensor, a tensor named like HTML markup).
#include "test_ui_support.hpp"

#include <ckpt/serve/ui_routes.hpp>

#include <cmath>

using namespace ckpt_ui_test;

namespace {

// Equal within what summing in another order can change.
void expect_close(const json& got, const json& want, const std::string& what) {
  const double g = got.get<double>(), w = want.get<double>();
  EXPECT_NEAR(g, w, 1e-9 * std::max(1.0, std::fabs(w))) << what;
}

TEST(UiStats, AgreeWithNumpyOnATorchSaveFile) {
  ckpt_test::TempDir dir("ui-stats");
  python(CKPT_UI_TEST_DIR "/test_ui_torch_file.py", {(dir / "state.pt").string(), (dir / "expected.json").string()});
  const json expected = read_json(dir / "expected.json");
  const int bins = expected["bins"];

  ckpt::serve::Router router;
  const std::string pt = (dir / "state.pt").string();
  ckpt::serve::add_ui_routes(router, [pt] { return std::vector<ckpt::serve::ServedCheckpoint>{{"state", 1, pt, pt, nullptr}}; });

  // Every tensor torch wrote is in the tree, the hostile name as it is.
  json tree = get_json(router, "/api/ui/tree", {{"ckpt", "state"}}, 200);
  std::map<std::string, json> tensors;
  std::function<void(const json&)> walk = [&](const json& n) {
    if (n["kind"] == "tensor") tensors[n["path"]] = n;
    else for (const auto& c : n["children"]) walk(c);
  };
  walk(tree["tree"]);
  EXPECT_TRUE(tensors.count(expected["hostile"])) << tree.dump();
  EXPECT_FALSE(tree["schema"]["integrity"]["recorded"]);  // torch.save records no hashes

  ASSERT_EQ(expected["tensors"].size(), 8u);
  for (const auto& [name, want] : expected["tensors"].items()) {
    SCOPED_TRACE(name);
    // The state dict's tensors are the root's (a torch.save file, not a ckpt checkpoint).
    ASSERT_TRUE(tensors.count(name)) << tree.dump();
    json got = get_json(router, "/api/ui/stats", {{"ckpt", "state"}, {"tensor", name}, {"bins", std::to_string(bins)}}, 200);
    for (const char* k : {"count", "finite", "nan", "pos_inf", "neg_inf", "zeros"}) EXPECT_EQ(got[k], want[k]) << k;
    EXPECT_DOUBLE_EQ(got["zero_share"].get<double>(), want["zeros"].get<double>() / want["count"].get<double>());
    ASSERT_TRUE(want.contains("min"));
    EXPECT_EQ(got["min"].get<double>(), want["min"].get<double>());
    EXPECT_EQ(got["max"].get<double>(), want["max"].get<double>());
    expect_close(got["mean"], want["mean"], "mean");
    expect_close(got["std"], want["std"], "std");
    const json& h = got["histogram"];
    ASSERT_EQ(h["counts"].size(), static_cast<size_t>(bins));
    EXPECT_EQ(h["counts"], want["counts"]);
    ASSERT_EQ(h["edges"].size(), want["edges"].size());
    for (size_t i = 0; i < want["edges"].size(); ++i) expect_close(h["edges"][i], want["edges"][i], "edge " + std::to_string(i));
  }
}

TEST(UiStats, EmptyAndAllNaNTensorsHaveNoRange) {
  ckpt_test::TempDir dir("ui-stats-empty");
  ckpt::Checkpoint c;
  c.model_state.add_tensor("empty", f32({0, 3}, {}));
  c.model_state.add_tensor("nan", f32({3}, {NAN, NAN, NAN}));
  c.model_state.add_tensor("c", ckpt::Tensor::from(ckpt::DType::c64, {2}, std::vector<float>{1, -2, 0, 4}));
  ckpt::save(c, dir / "x.msgpack");
  const std::string p = (dir / "x.msgpack").string();
  ckpt::serve::Router router;
  ckpt::serve::add_ui_routes(router, [p] { return std::vector<ckpt::serve::ServedCheckpoint>{{"x", 1, p, p, nullptr}}; });
  json e = get_json(router, "/api/ui/stats", {{"ckpt", "x"}, {"tensor", "model/state/empty"}}, 200);
  EXPECT_EQ(e["count"], 0);
  EXPECT_FALSE(e.contains("histogram"));
  json n = get_json(router, "/api/ui/stats", {{"ckpt", "x"}, {"tensor", "model/state/nan"}}, 200);
  EXPECT_EQ(n["nan"], 3);
  EXPECT_FALSE(n.contains("min"));
  // A complex tensor is described by its components, as ckpt diff compares them.
  json z = get_json(router, "/api/ui/stats", {{"ckpt", "x"}, {"tensor", "model/state/c"}}, 200);
  EXPECT_EQ(z["count"], 4);
  EXPECT_TRUE(z["complex_components"]);
  EXPECT_EQ(z["min"], -2.0);
  EXPECT_EQ(z["max"], 4.0);
  EXPECT_EQ(z["zeros"], 1);
}

ckpt::serve::ServedList memory(std::shared_ptr<ckpt::Checkpoint> c) {
  return [c] { return std::vector<ckpt::serve::ServedCheckpoint>{{"m", 1, "memory", "", c}}; };
}

TEST(UiStats, BlockQuantizedTensorIsDescribedByItsDecodedValues) {
  std::vector<float> values(64);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(static_cast<float>(i)) * 3.0f;
  ckpt::Tensor q = ckpt::Tensor::empty(ckpt::DType::q8_0, {2, 32});
  ckpt::cast_elements(ckpt::DType::f32, reinterpret_cast<const std::byte*>(values.data()), ckpt::DType::q8_0,
                      q.mutable_bytes().data(), values.size());
  std::vector<float> decoded(64);
  ckpt::cast_elements(ckpt::DType::q8_0, q.bytes().data(), ckpt::DType::f32, reinterpret_cast<std::byte*>(decoded.data()), 64);
  auto c = std::make_shared<ckpt::Checkpoint>();
  c->model_state.add_tensor("q", q);
  ckpt::serve::Router router;
  ckpt::serve::add_ui_routes(router, memory(c));
  json s = get_json(router, "/api/ui/stats", {{"ckpt", "m"}, {"tensor", "model/state/q"}, {"bins", "8"}}, 200);
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (float v : decoded) {
    lo = std::min<double>(lo, v);
    hi = std::max<double>(hi, v);
    sum += v;
  }
  EXPECT_EQ(s["dtype"], "q8_0");
  EXPECT_EQ(s["count"], 64);
  EXPECT_EQ(s["min"].get<double>(), lo);
  EXPECT_EQ(s["max"].get<double>(), hi);
  EXPECT_NEAR(s["mean"].get<double>(), sum / 64, 1e-12);
  uint64_t total = 0;
  for (const auto& n : s["histogram"]["counts"]) total += n.get<uint64_t>();
  EXPECT_EQ(total, 64u);
}

TEST(UiStats, RangeWiderThanTheLargestDoubleStillBins) {
  auto c = std::make_shared<ckpt::Checkpoint>();
  c->model_state.add_tensor("wide", ckpt::Tensor::from(ckpt::DType::f64, {4}, std::vector<double>{-1e308, 1e308, 0.0, 5e307}));
  ckpt::serve::Router router;
  ckpt::serve::add_ui_routes(router, memory(c));
  json s = get_json(router, "/api/ui/stats", {{"ckpt", "m"}, {"tensor", "model/state/wide"}, {"bins", "4"}}, 200);
  EXPECT_EQ(s["histogram"]["counts"], json::array({1, 0, 1, 2})) << s.dump();
  for (const auto& e : s["histogram"]["edges"]) EXPECT_TRUE(e.is_number()) << s.dump();
  EXPECT_TRUE(s["mean"].is_number()) << s.dump();  // the sum of these overflows nothing here
}

}  // namespace
