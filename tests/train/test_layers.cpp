// Layers against naive double references, their specs and their initialisation.
#include "test_layers_ref.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/train/engine.hpp>
#include <ckpt/train/layer.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace ckpt::train {
namespace {

using test::Ref;

Group layer_spec(const char* type) {
  Group g;
  g.set("type", type);
  return g;
}

Group conv_spec(int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> s,
                std::vector<int64_t> p) {
  Group g = layer_spec("conv2d");
  g.set("in_channels", in).set("out_channels", out);
  g.set("kernel_size", k).set("stride", s).set("padding", p);
  return g;
}

const Tensor* bias_of(Layer& l) {
  auto ps = l.parameters();
  return ps.size() > 1 ? &ps[1]->value : nullptr;
}

TEST(Layers, LinearMatchesReference) {
  Engine engine;
  std::mt19937_64 rng(1);
  for (bool bias : {true, false}) {
    Group spec = layer_spec("linear");
    spec.set("in_features", 37).set("out_features", 19).set("bias", bias);
    auto l = make_layer(spec, "fc", engine);
    l->reset_parameters(7);
    ASSERT_EQ(l->parameters().size(), bias ? 2u : 1u);
    Tensor x = test::random_tensor({5, 37}, rng);
    const Tensor& y = l->forward(x, false);
    ASSERT_EQ(y.shape(), (Shape{5, 19}));
    EXPECT_LT(test::max_rel_error(y, test::ref_linear(test::ref_of(x), l->parameters()[0]->value,
                                                      bias_of(*l))), 1e-5);
  }
}

TEST(Layers, Conv2dMatchesReference) {
  Engine engine;
  std::mt19937_64 rng(2);
  struct Case {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw;
  };
  for (Case k : {Case{2, 1, 28, 28, 10, 5, 5, 1, 1, 0, 0}, Case{3, 10, 12, 12, 20, 5, 5, 1, 1, 0, 0},
                 Case{2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 0}, Case{1, 16, 9, 9, 32, 3, 3, 2, 2, 1, 1}}) {
    auto l = make_layer(conv_spec(k.c, k.o, {k.kh, k.kw}, {k.sh, k.sw}, {k.ph, k.pw}), "conv",
                        engine);
    l->reset_parameters(3);
    Tensor x = test::random_tensor({k.n, k.c, k.h, k.w}, rng);
    for (bool training : {false, true}) {
      const Tensor& y = l->forward(x, training);
      Ref want = test::ref_conv2d(test::ref_of(x), l->parameters()[0]->value, bias_of(*l), k.sh,
                                  k.sw, k.ph, k.pw);
      ASSERT_EQ(y.shape(), want.shape);
      EXPECT_LT(test::max_rel_error(y, want), 1e-5) << "case c=" << k.c << " o=" << k.o;
    }
  }
}

TEST(Layers, MaxPool2dMatchesReference) {
  Engine engine;
  std::mt19937_64 rng(3);
  struct Case {
    int64_t n, c, h, w, kh, kw, sh, sw, ph, pw;
  };
  for (Case k : {Case{2, 10, 24, 24, 2, 2, 2, 2, 0, 0}, Case{2, 3, 7, 7, 3, 3, 2, 2, 1, 1},
                 Case{1, 2, 5, 6, 2, 3, 1, 2, 0, 1}}) {
    Group spec = layer_spec("maxpool2d");
    spec.set("kernel_size", std::vector<int64_t>{k.kh, k.kw});
    spec.set("stride", std::vector<int64_t>{k.sh, k.sw});
    spec.set("padding", std::vector<int64_t>{k.ph, k.pw});
    auto l = make_layer(spec, "pool", engine);
    Tensor x = test::random_tensor({k.n, k.c, k.h, k.w}, rng);
    const Tensor& y = l->forward(x, true);
    Ref want = test::ref_maxpool2d(test::ref_of(x), k.kh, k.kw, k.sh, k.sw, k.ph, k.pw);
    ASSERT_EQ(y.shape(), want.shape);
    EXPECT_EQ(test::max_rel_error(y, want), 0.0);
  }
}

TEST(Layers, ReluFlattenSoftmaxMatchReference) {
  Engine engine;
  std::mt19937_64 rng(4);
  Tensor x = test::random_tensor({3, 2, 4, 5}, rng);
  auto relu = make_layer(layer_spec("relu"), "relu", engine);
  EXPECT_EQ(test::max_rel_error(relu->forward(x, true), test::ref_relu(test::ref_of(x))), 0.0);
  // The Tensor API never computes in place over the caller's input.
  EXPECT_TRUE(x.bit_equal(x.clone()));
  EXPECT_LT(*std::min_element(x.data<float>().begin(), x.data<float>().end()), 0.0f);

  auto flat = make_layer(layer_spec("flatten"), "flatten", engine);
  const Tensor& f = flat->forward(x, true);
  ASSERT_EQ(f.shape(), (Shape{3, 40}));
  EXPECT_EQ(std::memcmp(f.bytes().data(), x.bytes().data(), x.nbytes()), 0);

  auto sm = make_layer(layer_spec("softmax"), "softmax", engine);
  Tensor logits = test::random_tensor({4, 7}, rng, -3, 3);
  EXPECT_LT(test::max_rel_error(sm->forward(logits, true), test::ref_softmax_rows(test::ref_of(logits))),
            1e-6);
}

TEST(Layers, DescribeRebuildsTheSameLayer) {
  Engine engine;
  Group spec = conv_spec(3, 8, {5, 3}, {1, 1}, {2, 1});
  auto l = make_layer(spec, "conv", engine);
  Group described;
  l->describe(described);
  EXPECT_EQ(std::get<std::string>(*described.attribute("type")), "conv2d");
  EXPECT_EQ(std::get<std::vector<int64_t>>(*described.attribute("kernel_size")),
            (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(std::get<int64_t>(*described.attribute("stride")), 1);
  auto again = make_layer(described, "conv", engine);
  EXPECT_EQ(again->output_shape({2, 3, 10, 10}), l->output_shape({2, 3, 10, 10}));
  EXPECT_EQ(l->output_shape({2, 3, 10, 10}), (Shape{2, 8, 10, 10}));
}

std::string error_of(const Group& spec) {
  Engine engine;
  try {
    make_layer(spec, "fc1", engine);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Layers, BadSpecsNameTheLayerAndAttribute) {
  Group g = layer_spec("linear");
  g.set("out_features", 3);
  EXPECT_EQ(error_of(g).rfind("model/spec/fc1: in_features must be a positive integer", 0), 0u)
      << error_of(g);
  g.set("in_features", -2);
  EXPECT_NE(error_of(g).find("got int64 -2"), std::string::npos) << error_of(g);
  g.set("in_features", "ten");
  EXPECT_NE(error_of(g).find("in_features must be a positive integer"), std::string::npos);
  g.set("in_features", 4).set("bias", 1);
  EXPECT_NE(error_of(g).find("model/spec/fc1: bias must be a bool"), std::string::npos);

  Group c = conv_spec(1, 2, {5, 5, 5}, {1, 1}, {0, 0});
  EXPECT_NE(error_of(c).find("model/spec/fc1: kernel_size must be a positive integer or a pair"),
            std::string::npos)
      << error_of(c);
  c = conv_spec(1, 2, {5, 5}, {1, 1}, {-1, 0});
  EXPECT_NE(error_of(c).find("padding must be a non-negative"), std::string::npos);

  Group p = layer_spec("maxpool2d");
  EXPECT_NE(error_of(p).find("model/spec/fc1: kernel_size"), std::string::npos);
  p.set("kernel_size", 2).set("padding", 2);
  EXPECT_NE(error_of(p).find("padding must be at most half of kernel_size"), std::string::npos);

  EXPECT_NE(error_of(layer_spec("lstm")).find("unknown layer type \"lstm\""), std::string::npos);
  EXPECT_NE(error_of(Group()).find("model/spec/fc1: type must be a string"), std::string::npos);
}

TEST(Layers, WrongInputShapeNamesBothShapes) {
  Engine engine;
  Group g = layer_spec("linear");
  g.set("in_features", 4).set("out_features", 2);
  auto l = make_layer(g, "fc1", engine);
  try {
    l->forward(Tensor::zeros(DType::f32, {3, 5}), true);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model/spec/fc1: expects input of shape [N, 4]"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[3, 5]"), std::string::npos);
  }
  EXPECT_THROW(l->backward(Tensor::zeros(DType::f32, {3, 2})), UsageError);
  l->forward(Tensor::zeros(DType::f32, {3, 4}), false);
  EXPECT_THROW(l->backward(Tensor::zeros(DType::f32, {3, 2})), UsageError);  // eval forward
  l->forward(Tensor::zeros(DType::f32, {3, 4}), true);
  EXPECT_THROW(l->backward(Tensor::zeros(DType::f32, {3, 3})), UsageError);
  EXPECT_NO_THROW(l->backward(Tensor::zeros(DType::f32, {3, 2})));
}

TEST(Layers, InitialisationIsPyTorchsUniformAndSeeded) {
  Engine engine;
  Group g = layer_spec("linear");
  g.set("in_features", 400).set("out_features", 300);
  auto a = make_layer(g, "fc", engine), b = make_layer(g, "fc", engine);
  a->reset_parameters(42);
  b->reset_parameters(42);
  const float bound = 1.0f / 20.0f;  // 1/sqrt(400)
  for (size_t i = 0; i < 2; ++i) {
    const Tensor& v = a->parameters()[i]->value;
    EXPECT_TRUE(v.bit_equal(b->parameters()[i]->value));
    double sum = 0, lo = 1, hi = -1;
    for (float x : v.data<float>()) {
      EXPECT_LE(std::abs(x), bound);
      sum += x;
      lo = std::min<double>(lo, x);
      hi = std::max<double>(hi, x);
    }
    EXPECT_LT(std::abs(sum / static_cast<double>(v.numel())), bound * 0.1);
    EXPECT_LT(lo, -bound * 0.9);
    EXPECT_GT(hi, bound * 0.9);
  }
  b->reset_parameters(43);
  EXPECT_FALSE(a->parameters()[0]->value.bit_equal(b->parameters()[0]->value));

  auto c = make_layer(conv_spec(10, 20, {5, 5}, {1, 1}, {0, 0}), "conv", engine);
  c->reset_parameters(1);
  const float cbound = 1.0f / std::sqrt(250.0f);
  for (Parameter* p : c->parameters())
    for (float x : p->value.data<float>()) EXPECT_LE(std::abs(x), cbound);
}

}  // namespace
}  // namespace ckpt::train
