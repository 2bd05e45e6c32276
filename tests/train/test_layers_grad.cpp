// Every layer's and loss's gradients against central finite differences. The objective is
// L = sum(output * R) for a fixed random R, evaluated in double over the f32 outputs; inputs are
// kept away from ReLU's kink and from max-pooling ties so that the differences are exact up to
// rounding.
#include "test_layers_ref.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/train/engine.hpp>
#include <ckpt/train/layer.hpp>
#include <ckpt/train/loss.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace ckpt::train {
namespace {

double objective(Layer& l, const Tensor& x, const Tensor& r) {
  const Tensor& y = l.forward(x, true);
  auto yd = y.data<float>();
  auto rd = r.data<float>();
  double s = 0;
  for (size_t i = 0; i < yd.size(); ++i) s += static_cast<double>(yd[i]) * rd[i];
  return s;
}

// Compares `analytic` with central differences of the objective with respect to `target`'s
// elements (an input or a parameter of `l`).
void expect_matches_differences(Layer& l, const Tensor& x, const Tensor& r, const Tensor& target,
                                const Tensor& analytic, float eps, const std::string& what) {
  auto t = target.mutable_data<float>();
  auto a = analytic.data<float>();
  double scale = 0;
  for (float v : a) scale = std::max(scale, static_cast<double>(std::abs(v)));
  ASSERT_GT(scale, 0) << what << ": all-zero gradient tests nothing";
  for (size_t i = 0; i < t.size(); ++i) {
    float keep = t[i];
    t[i] = keep + eps;
    double plus = objective(l, x, r);
    t[i] = keep - eps;
    double minus = objective(l, x, r);
    t[i] = keep;
    double numeric = (plus - minus) / (2.0 * eps);
    EXPECT_NEAR(a[i], numeric, 1e-2 * std::max(std::abs(numeric), 0.1 * scale))
        << what << " element " << i;
  }
}

// Checks d/dx and d/dparam of one layer for input x.
void check_gradients(Layer& l, Tensor x, float eps) {
  std::mt19937_64 rng(99);
  Shape out = l.output_shape(x.shape());
  Tensor r = test::random_tensor(out, rng);
  l.forward(x, true);
  Tensor dx = l.backward(r).clone();
  std::vector<Tensor> grads;
  for (Parameter* p : l.parameters()) grads.push_back(p->grad.clone());
  expect_matches_differences(l, x, r, x, dx, eps, "input");
  auto ps = l.parameters();
  for (size_t k = 0; k < ps.size(); ++k)
    expect_matches_differences(l, x, r, ps[k]->value, grads[k], eps, ps[k]->name);
  // Backward overwrites; a second step gives the same gradients.
  l.forward(x, true);
  EXPECT_TRUE(l.backward(r).bit_equal(dx));
  for (size_t k = 0; k < ps.size(); ++k) EXPECT_TRUE(ps[k]->grad.bit_equal(grads[k]));
}

std::unique_ptr<Layer> layer(Group spec, Engine& engine) {
  auto l = make_layer(spec, "layer", engine);
  l->reset_parameters(5);
  return l;
}

// Distinct values 2/numel apart, shuffled, in [-1, 1).
Tensor spread(Shape shape, std::mt19937_64& rng) {
  Tensor t = Tensor::zeros(DType::f32, std::move(shape));
  auto d = t.mutable_data<float>();
  std::vector<size_t> order(d.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<float>(-1.0 + 2.0 * static_cast<double>(order[i]) / static_cast<double>(d.size()));
  return t;
}

TEST(LayerGradients, Linear) {
  Engine engine;
  std::mt19937_64 rng(1);
  for (bool bias : {true, false}) {
    Group g;
    g.set("type", "linear").set("in_features", 6).set("out_features", 4).set("bias", bias);
    auto l = layer(g, engine);
    check_gradients(*l, test::random_tensor({3, 6}, rng), 1e-2f);
  }
}

TEST(LayerGradients, Conv2d) {
  Engine engine;
  std::mt19937_64 rng(2);
  struct Case {
    Shape x;
    int64_t out;
    std::vector<int64_t> k, s, p;
  };
  for (const Case& c : {Case{{2, 1, 8, 8}, 3, {5, 5}, {1, 1}, {0, 0}},
                        Case{{2, 3, 6, 5}, 4, {3, 2}, {2, 1}, {1, 0}},
                        Case{{1, 5, 6, 6}, 6, {3, 3}, {1, 1}, {1, 1}}}) {
    Group g;
    g.set("type", "conv2d").set("in_channels", c.x[1]).set("out_channels", c.out);
    g.set("kernel_size", c.k).set("stride", c.s).set("padding", c.p);
    auto l = layer(g, engine);
    check_gradients(*l, test::random_tensor(c.x, rng), 1e-2f);
  }
}

TEST(LayerGradients, MaxPool2d) {
  Engine engine;
  std::mt19937_64 rng(3);
  for (auto [k, s, p] : {std::tuple{2, 2, 0}, std::tuple{3, 2, 1}}) {
    Group g;
    g.set("type", "maxpool2d").set("kernel_size", k).set("stride", s).set("padding", p);
    auto l = layer(g, engine);
    Shape shape{2, 3, 6, 6};
    Tensor x = spread(shape, rng);
    // Neighbours differ by 2/216 > 2 eps, so no perturbation changes which element is the max.
    check_gradients(*l, x, 2e-3f);
  }
}

TEST(LayerGradients, ReLU) {
  Engine engine;
  std::mt19937_64 rng(4);
  Group g;
  g.set("type", "relu");
  auto l = layer(g, engine);
  Tensor x = test::random_tensor({3, 4, 5}, rng);
  for (float& v : x.mutable_data<float>()) v = v < 0 ? std::min(v, -0.05f) : std::max(v, 0.05f);
  check_gradients(*l, x, 1e-2f);
}

TEST(LayerGradients, Flatten) {
  Engine engine;
  std::mt19937_64 rng(5);
  Group g;
  g.set("type", "flatten");
  check_gradients(*layer(g, engine), test::random_tensor({2, 3, 4, 2}, rng), 1e-2f);
}

TEST(LayerGradients, Softmax) {
  Engine engine;
  std::mt19937_64 rng(6);
  Group g;
  g.set("type", "softmax");
  check_gradients(*layer(g, engine), test::random_tensor({4, 6}, rng, -2, 2), 1e-2f);
  g.set("dim", -1);
  check_gradients(*layer(g, engine), test::random_tensor({2, 3, 5}, rng, -2, 2), 1e-2f);
}

// The losses in double: cross-entropy against labels, MSE against targets.
double ce_ref(const Tensor& logits, std::span<const uint8_t> labels) {
  test::Ref p = test::ref_softmax_rows(test::ref_of(logits));
  int64_t n = logits.shape()[0], c = logits.shape()[1];
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s -= std::log(p.at(i * c + labels[i]));
  return s / static_cast<double>(n);
}

TEST(LossGradients, CrossEntropy) {
  std::mt19937_64 rng(7);
  Tensor logits = test::random_tensor({5, 4}, rng, -3, 3);
  std::vector<uint8_t> labels{0, 3, 1, 1, 2};
  Tensor grad;
  LossResult r = cross_entropy(logits, labels, grad);
  EXPECT_NEAR(r.loss, ce_ref(logits, labels), 1e-6);
  int64_t correct = 0;
  for (int64_t i = 0; i < 5; ++i) {
    auto row = logits.data<float>().subspan(static_cast<size_t>(i * 4), 4);
    correct += std::max_element(row.begin(), row.end()) - row.begin() == labels[i];
  }
  EXPECT_EQ(r.correct, correct);
  ASSERT_EQ(grad.shape(), logits.shape());
  auto x = logits.mutable_data<float>();
  const float eps = 1e-2f;
  for (size_t i = 0; i < x.size(); ++i) {
    float keep = x[i];
    x[i] = keep + eps;
    double plus = ce_ref(logits, labels);
    x[i] = keep - eps;
    double minus = ce_ref(logits, labels);
    x[i] = keep;
    EXPECT_NEAR(grad.data<float>()[i], (plus - minus) / (2 * eps), 1e-3) << i;
  }
  std::vector<uint8_t> bad{0, 4, 1, 1, 2};
  EXPECT_THROW(cross_entropy(logits, bad, grad), UsageError);
  EXPECT_THROW(cross_entropy(logits, std::span(labels).first(4), grad), UsageError);
}

TEST(LossGradients, CrossEntropyIsStableForLargeLogits) {
  Tensor logits = Tensor::from<float>(DType::f32, {1, 3}, std::vector<float>{1000, 0, -1000});
  std::vector<uint8_t> labels{1};
  Tensor grad;
  LossResult r = cross_entropy(logits, labels, grad);
  EXPECT_NEAR(r.loss, 1000.0, 1e-3);
  EXPECT_NEAR(grad.data<float>()[0], 1.0, 1e-6);
  EXPECT_NEAR(grad.data<float>()[1], -1.0, 1e-6);
}

TEST(LossGradients, Mse) {
  std::mt19937_64 rng(8);
  Tensor y = test::random_tensor({4, 3}, rng), t = test::random_tensor({4, 3}, rng);
  auto ref = [&]() {
    double s = 0;
    for (size_t i = 0; i < 12; ++i) {
      double d = static_cast<double>(y.data<float>()[i]) - t.data<float>()[i];
      s += d * d;
    }
    return s / 12;
  };
  Tensor grad;
  LossResult r = mse(y, t, grad);
  EXPECT_NEAR(r.loss, ref(), 1e-7);
  auto x = y.mutable_data<float>();
  const float eps = 1e-2f;
  for (size_t i = 0; i < x.size(); ++i) {
    float keep = x[i];
    x[i] = keep + eps;
    double plus = ref();
    x[i] = keep - eps;
    double minus = ref();
    x[i] = keep;
    EXPECT_NEAR(grad.data<float>()[i], (plus - minus) / (2 * eps), 1e-5) << i;
  }
  EXPECT_THROW(mse(y, Tensor::zeros(DType::f32, {4, 2}), grad), UsageError);
}

}  // namespace
}  // namespace ckpt::train
