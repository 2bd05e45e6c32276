// Models from specs: state dicts, forward against double references, the model path (blocked
// layouts, in-place layers) against the same layers chained through their plain Tensor API,
// determinism, and errors.
#include "test_layers_ref.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/train/loss.hpp>
#include <ckpt/train/model.hpp>

#include <gtest/gtest.h>

#include <cstring>

namespace ckpt::train {
namespace {

using test::Ref;

Tensor param(Model& m, const std::string& name) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) return p->value;
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

std::vector<uint8_t> labels_for(int64_t n, int64_t classes) {
  std::vector<uint8_t> l(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) l[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 7 + 3) % classes);
  return l;
}

Tensor batch(const Model& m, int64_t n, uint64_t seed) {
  Shape s{n};
  s.insert(s.end(), m.input_shape().begin(), m.input_shape().end());
  std::mt19937_64 rng(seed);
  Tensor x = aligned_tensor(s);
  std::uniform_real_distribution<float> u(0, 1);
  for (float& v : x.mutable_data<float>()) v = u(rng);
  return x;
}

TEST(Model, ReadyMadeSpecsHavePyTorchNames) {
  auto conv = Model::from_spec(Model::convnet_spec());
  std::vector<std::pair<std::string, Shape>> want{
      {"conv1.weight", {10, 1, 5, 5}}, {"conv1.bias", {10}}, {"conv2.weight", {20, 10, 5, 5}},
      {"conv2.bias", {20}},           {"fc1.weight", {50, 320}}, {"fc1.bias", {50}},
      {"fc2.weight", {10, 50}},       {"fc2.bias", {10}}};
  Group sd = conv->state_dict();
  ASSERT_EQ(sd.children().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(sd.children()[i].name, want[i].first);
    EXPECT_EQ(sd.children()[i].tensor().shape(), want[i].second);
    EXPECT_EQ(sd.children()[i].tensor().dtype(), DType::f32);
  }
  EXPECT_EQ(conv->output_shape(64), (Shape{64, 10}));

  auto mlp = Model::from_spec(Model::mlp_spec(784, {256, 128}, 10));
  std::vector<std::string> names;
  for (auto& [n, p] : mlp->named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                             "fc3.weight", "fc3.bias"}));
  EXPECT_EQ(param(*mlp, "fc2.weight").shape(), (Shape{128, 256}));

  auto reg = Model::from_spec(Model::linear_regression_spec(13));
  names.clear();
  for (auto& [n, p] : reg->named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"linear.weight", "linear.bias"}));
  EXPECT_EQ(reg->output_shape(4), (Shape{4, 1}));
  auto logit = Model::from_spec(Model::logistic_regression_spec(784, 10));
  EXPECT_EQ(param(*logit, "linear.weight").shape(), (Shape{10, 784}));
}

TEST(Model, ConvNetForwardMatchesReference) {
  auto m = Model::from_spec(Model::convnet_spec(), 3);
  Tensor x = batch(*m, 3, 1);
  Ref r = test::ref_of(x);
  Tensor b1 = param(*m, "conv1.bias"), b2 = param(*m, "conv2.bias");
  Tensor b3 = param(*m, "fc1.bias"), b4 = param(*m, "fc2.bias");
  r = test::ref_conv2d(r, param(*m, "conv1.weight"), &b1, 1, 1, 0, 0);
  r = test::ref_relu(test::ref_maxpool2d(r, 2, 2, 2, 2, 0, 0));
  r = test::ref_conv2d(r, param(*m, "conv2.weight"), &b2, 1, 1, 0, 0);
  r = test::ref_relu(test::ref_maxpool2d(r, 2, 2, 2, 2, 0, 0));
  r.shape = {3, 320};
  r = test::ref_relu(test::ref_linear(r, param(*m, "fc1.weight"), &b3));
  r = test::ref_linear(r, param(*m, "fc2.weight"), &b4);
  for (bool training : {true, false}) {
    m->train(training);
    const Tensor& y = m->forward(x);
    ASSERT_EQ(y.shape(), (Shape{3, 10}));
    EXPECT_LT(test::max_rel_error(y, r), 1e-5);
  }
}

TEST(Model, MlpForwardMatchesReference) {
  auto m = Model::from_spec(Model::mlp_spec(20, {16, 8}, 4), 9);
  Tensor x = batch(*m, 5, 2);
  Tensor b1 = param(*m, "fc1.bias"), b2 = param(*m, "fc2.bias"), b3 = param(*m, "fc3.bias");
  Ref r = test::ref_relu(test::ref_linear(test::ref_of(x), param(*m, "fc1.weight"), &b1));
  r = test::ref_relu(test::ref_linear(r, param(*m, "fc2.weight"), &b2));
  r = test::ref_linear(r, param(*m, "fc3.weight"), &b3);
  EXPECT_LT(test::max_rel_error(m->forward(x), r), 1e-5);
}

// The same layers, built from the model's spec with its parameters, chained by hand through the
// plain Tensor API (each layer's gradients are checked against finite differences elsewhere).
struct Chain {
  Engine engine;
  std::vector<std::unique_ptr<Layer>> layers;
  std::vector<std::string> names;

  Chain(Model& m) {
    names = std::get<std::vector<std::string>>(*m.spec().attribute("layers"));
    Group sd = m.state_dict();
    for (const auto& n : names) {
      layers.push_back(make_layer(*m.spec().find_group(n), n, engine));
      for (Parameter* p : layers.back()->parameters()) {
        const Tensor* t = sd.find_tensor(n + "." + p->name);
        std::memcpy(p->value.mutable_bytes().data(), t->bytes().data(), t->nbytes());
      }
    }
  }
  const Tensor& forward(const Tensor& x) {
    const Tensor* y = &x;
    for (auto& l : layers) y = &l->forward(*y, true);
    return *y;
  }
  void backward(const Tensor& g) {
    const Tensor* d = &g;
    for (size_t i = layers.size(); i-- > 0;) d = &layers[i]->backward(*d);
  }
  Tensor grad(const std::string& name) {
    for (size_t i = 0; i < names.size(); ++i)
      for (Parameter* p : layers[i]->parameters())
        if (names[i] + "." + p->name == name) return p->grad;
    return {};
  }
};

double max_rel_diff(const Tensor& a, const Tensor& b) { return test::max_rel_error(a, test::ref_of(b)); }

void expect_model_matches_chain(Group spec, int64_t n, bool use_mse) {
  auto m = Model::from_spec(spec, 17);
  Chain chain(*m);
  Tensor x = batch(*m, n, 5);
  const Tensor& y = m->forward(x);
  const Tensor& yc = chain.forward(x);
  EXPECT_LT(max_rel_diff(y, yc), 1e-5);
  Tensor g, gc;
  if (use_mse) {
    std::mt19937_64 rng(4);
    Tensor t = test::random_tensor(y.shape(), rng);
    mse(y, t, g);
    mse(yc, t, gc);
  } else {
    auto labels = labels_for(n, y.shape()[1]);
    cross_entropy(y, labels, g);
    cross_entropy(yc, labels, gc);
  }
  m->backward(g);
  chain.backward(gc);
  for (auto& [name, p] : m->named_parameters()) {
    double scale = 0;
    for (float v : chain.grad(name).data<float>()) scale = std::max(scale, double(std::abs(v)));
    ASSERT_GT(scale, 0) << name;
    auto a = p->grad.data<float>(), b = chain.grad(name).data<float>();
    double err = 0;
    for (size_t i = 0; i < a.size(); ++i) err = std::max(err, double(std::abs(a[i] - b[i])));
    EXPECT_LT(err / scale, 1e-4) << name;
  }
}

TEST(Model, ConvNetGradientsMatchTheLayerChain) {
  expect_model_matches_chain(Model::convnet_spec(), 4, false);
}

TEST(Model, MlpGradientsMatchTheLayerChain) {
  expect_model_matches_chain(Model::mlp_spec(30, {20, 10}, 5), 3, false);
}

TEST(Model, InPlaceLayersRespectWhatBackwardReads) {
  // ReLU after a conv runs in place; softmax after ReLU and ReLU after softmax must not, since
  // both read their outputs in backward; flatten aliases its input.
  Group g;
  g.set("type", "sequential").set("input_shape", std::vector<int64_t>{2, 6, 6});
  g.set("layers", std::vector<std::string>{"conv", "r1", "sm1", "r2", "flat", "fc", "sm2"});
  g.add_group("conv").set("type", "conv2d").set("in_channels", 2).set("out_channels", 4)
      .set("kernel_size", 3).set("padding", 1);
  g.add_group("r1").set("type", "relu");
  g.add_group("sm1").set("type", "softmax");
  g.add_group("r2").set("type", "relu");
  g.add_group("flat").set("type", "flatten");
  g.add_group("fc").set("type", "linear").set("in_features", 144).set("out_features", 3);
  g.add_group("sm2").set("type", "softmax");
  expect_model_matches_chain(g, 2, true);
}

TEST(Model, RegressionGradientsMatchFiniteDifferences) {
  auto m = Model::from_spec(Model::linear_regression_spec(3), 1);
  Tensor x = batch(*m, 4, 3);
  std::mt19937_64 rng(6);
  Tensor t = test::random_tensor({4, 1}, rng);
  Tensor g;
  mse(m->forward(x), t, g);
  m->backward(g);
  for (auto& [name, p] : m->named_parameters()) {
    auto v = p->value.mutable_data<float>();
    for (size_t i = 0; i < v.size(); ++i) {
      float keep = v[i];
      Tensor scratch;
      v[i] = keep + 1e-2f;
      double plus = mse(m->forward(x), t, scratch).loss;
      v[i] = keep - 1e-2f;
      double minus = mse(m->forward(x), t, scratch).loss;
      v[i] = keep;
      EXPECT_NEAR(p->grad.data<float>()[i], (plus - minus) / 2e-2, 1e-3) << name << " " << i;
    }
  }
}

// Trains a few SGD steps and returns the parameters and the last gradients.
std::vector<Tensor> train_steps(const Group& spec, int threads, int steps) {
  Engine::set_threads(threads);
  auto m = Model::from_spec(spec, 11);
  Tensor x = batch(*m, 16, 21);
  auto labels = labels_for(16, 10);
  Tensor g;
  for (int s = 0; s < steps; ++s) {
    cross_entropy(m->forward(x), labels, g);
    m->backward(g);
    for (auto& [n, p] : m->named_parameters()) {
      auto v = p->value.mutable_data<float>();
      auto d = p->grad.data<float>();
      for (size_t i = 0; i < v.size(); ++i) v[i] -= 0.1f * d[i];
    }
  }
  std::vector<Tensor> out{m->forward(x).clone()};
  for (auto& [n, p] : m->named_parameters()) {
    out.push_back(p->value.clone());
    out.push_back(p->grad.clone());
  }
  return out;
}

TEST(Model, TrainingIsBitIdenticalRunToRun) {
  int before = Engine::threads();
  for (const Group& spec : {Model::mlp_spec(784, {256, 128}, 10), Model::convnet_spec()})
    for (int threads : {1, 2}) {
      auto a = train_steps(spec, threads, 3), b = train_steps(spec, threads, 3);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].bit_equal(b[i])) << i << " threads " << threads;
    }
  Engine::set_threads(before);
}

TEST(Model, SmallerLastBatchGetsItsOwnPrimitives) {
  auto m = Model::from_spec(Model::convnet_spec(), 2);
  Tensor x = batch(*m, 64, 8);
  Tensor first = m->forward(x).clone();
  Tensor small = aligned_tensor({10, 1, 28, 28});
  std::memcpy(small.mutable_bytes().data(), x.bytes().data(), small.nbytes());
  const Tensor& ys = m->forward(small);
  ASSERT_EQ(ys.shape(), (Shape{10, 10}));
  Ref head = test::ref_of(first);
  head.v.resize(100);
  EXPECT_LT(test::max_rel_error(ys, head), 1e-5);
  EXPECT_TRUE(m->forward(x).bit_equal(first));
}

TEST(Model, UnalignedInputGivesTheSameBits) {
  auto m = Model::from_spec(Model::mlp_spec(50, {30}, 10), 2);
  Tensor x = batch(*m, 8, 1);
  Tensor y = m->forward(x).clone();
  auto storage = Storage::allocate(x.nbytes() + 4);
  Tensor shifted(DType::f32, x.shape(), storage, 4);
  std::memcpy(shifted.mutable_bytes().data(), x.bytes().data(), x.nbytes());
  EXPECT_TRUE(m->forward(shifted).bit_equal(y));
}

TEST(Model, LoadStateDictStrictReportsEveryProblem) {
  auto m = Model::from_spec(Model::convnet_spec(), 1);
  auto other = Model::from_spec(Model::convnet_spec(), 2);
  Group sd = other->state_dict();
  sd.erase("fc2.bias");
  sd.erase("conv1.bias");
  sd.set_tensor("fc1.weight", Tensor::zeros(DType::f32, {50, 321}));
  sd.add_tensor("fc3.weight", Tensor::zeros(DType::f32, {2, 2}));
  sd.group("aux").add_tensor("x", Tensor::zeros(DType::f32, {1}));
  Tensor before = param(*m, "conv1.weight").clone();
  try {
    m->load_state_dict(sd, true);
    FAIL() << "strict load accepted a broken state dict";
  } catch (const UsageError& e) {
    std::string msg = e.what();
    for (const char* part : {"missing: conv1.bias, fc2.bias", "unexpected: fc3.weight, aux/x",
                             "fc1.weight: [50, 320] in the model, [50, 321] given"})
      EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
  }
  EXPECT_TRUE(param(*m, "conv1.weight").bit_equal(before));  // strict loads nothing

  LoadResult r = m->load_state_dict(sd, false);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"conv1.bias", "fc2.bias"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"fc3.weight", "aux/x"}));
  ASSERT_EQ(r.shape_mismatch.size(), 1u);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(param(*m, "conv1.weight").bit_equal(*other->state_dict().find_tensor("conv1.weight")));
}

TEST(Model, StateDictViewsAndRoundTrip) {
  auto a = Model::from_spec(Model::mlp_spec(6, {5}, 3), 1);
  auto b = Model::from_spec(Model::mlp_spec(6, {5}, 3), 2);
  Group sd = a->state_dict();
  sd.find_tensor("fc1.bias")->mutable_data<float>()[0] = 42;  // a view
  EXPECT_EQ(param(*a, "fc1.bias").data<float>()[0], 42);
  EXPECT_TRUE(b->load_state_dict(sd).ok());
  Tensor x = batch(*a, 2, 1);
  EXPECT_TRUE(a->forward(x).bit_equal(b->forward(x)));
  EXPECT_TRUE(a->load_state_dict(a->state_dict()).ok());  // loading its own views

  Group f64;
  for (const auto& n : sd.children()) {
    Tensor t = Tensor::zeros(DType::f64, n.tensor().shape());
    auto d = t.mutable_data<double>();
    for (size_t i = 0; i < d.size(); ++i) d[i] = 0.5;
    f64.add_tensor(n.name, t);
  }
  EXPECT_TRUE(b->load_state_dict(f64).ok());
  EXPECT_EQ(param(*b, "fc2.weight").data<float>()[3], 0.5f);
}

TEST(Model, SpecRebuildsTheSameModel) {
  auto a = Model::from_spec(Model::convnet_spec(), 5);
  auto b = Model::from_spec(a->spec(), 5);
  auto c = Model::from_spec(a->spec(), 6);
  for (auto& [n, p] : a->named_parameters()) {
    EXPECT_TRUE(p->value.bit_equal(param(*b, n))) << n;
    EXPECT_FALSE(p->value.bit_equal(param(*c, n))) << n;
  }
}

std::string spec_error(const Group& spec) {
  try {
    Model::from_spec(spec);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Model, BadSpecsSayWhere) {
  Group g = Model::mlp_spec(10, {8}, 3);
  g.group("fc1").set("in_features", 0);
  EXPECT_EQ(spec_error(g).rfind("model/spec/fc1: in_features must be a positive integer", 0), 0u)
      << spec_error(g);
  g = Model::mlp_spec(10, {8}, 3);
  g.group("fc2").set("in_features", 9);
  EXPECT_EQ(spec_error(g).rfind("model/spec/fc2: expects input of shape [N, 9]", 0), 0u)
      << spec_error(g);
  g = Model::mlp_spec(10, {8}, 3);
  g.set("type", "graph");
  EXPECT_NE(spec_error(g).find("model/spec: type must be \"sequential\""), std::string::npos);
  g = Model::mlp_spec(10, {8}, 3);
  g.set("input_shape", std::vector<int64_t>{10, 0});
  EXPECT_NE(spec_error(g).find("model/spec: input_shape"), std::string::npos);
  g = Model::mlp_spec(10, {8}, 3);
  g.erase("relu1");
  EXPECT_NE(spec_error(g).find("layer \"relu1\" is listed in layers but has no group"),
            std::string::npos);
  g = Model::mlp_spec(10, {8}, 3);
  g.set("layers", std::vector<std::string>{"fc1", "fc1"});
  EXPECT_NE(spec_error(g).find("listed twice"), std::string::npos);
  EXPECT_THROW(Model::mlp_spec(10, {0}, 3), UsageError);
}

TEST(Model, MismatchedInputNamesBothShapes) {
  auto m = Model::from_spec(Model::convnet_spec());
  try {
    m->forward(Tensor::zeros(DType::f32, {64, 784}));
    FAIL();
  } catch (const UsageError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("[N, 1, 28, 28]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[64, 784]"), std::string::npos) << msg;
  }
  EXPECT_THROW(m->forward(Tensor::zeros(DType::f64, {2, 1, 28, 28})), UsageError);
  EXPECT_THROW(m->backward(Tensor::zeros(DType::f32, {2, 10})), UsageError);  // no forward yet
  m->eval();
  m->forward(Tensor::zeros(DType::f32, {2, 1, 28, 28}));
  EXPECT_THROW(m->backward(Tensor::zeros(DType::f32, {2, 10})), UsageError);
  m->train();
  m->forward(Tensor::zeros(DType::f32, {2, 1, 28, 28}));
  EXPECT_THROW(m->backward(Tensor::zeros(DType::f32, {3, 10})), UsageError);
  EXPECT_NO_THROW(m->backward(Tensor::zeros(DType::f32, {2, 10})));
}

}  // namespace
}  // namespace ckpt::train
