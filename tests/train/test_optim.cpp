// Optimizer and schedule arithmetic against PyTorch's documented update rules, and their
// state dicts.
#include <ckpt/errors.hpp>
#include <ckpt/train/optimizer.hpp>
#include <ckpt/train/schedule.hpp>

#include <gtest/gtest.h>

#include <cmath>

using namespace ckpt;
using namespace ckpt::train;

namespace {

struct OneParam {
  Parameter p{"weight", Tensor::from<float>(DType::f32, {2}, {1.0f, -2.0f}), Tensor::from<float>(DType::f32, {2}, {0.5f, 0.25f})};
  NamedParameters named() { return {{"fc.weight", &p}}; }
  float w(size_t i) { return p.value.data<float>()[i]; }
};

Group cfg(std::initializer_list<std::pair<const char*, Value>> kv) {
  Group g;
  for (const auto& [k, v] : kv) g.set(k, v);
  return g;
}

}  // namespace

TEST(Sgd, MomentumDampeningAndWeightDecayFollowTorch) {
  OneParam x;
  auto opt = Optimizer::make(cfg({{"type", std::string("sgd")}, {"lr", 0.1}, {"momentum", 0.9}, {"dampening", 0.5}, {"weight_decay", 0.01}}));
  // step 1: d = g + wd*w; buf = d; w -= lr*buf
  opt->step(x.named(), 0.1);
  float d0 = 0.5f + 0.01f * 1.0f;
  EXPECT_FLOAT_EQ(x.w(0), 1.0f - 0.1f * d0);
  // step 2: buf = 0.9*buf + 0.5*d
  float w1 = x.w(0);
  opt->step(x.named(), 0.1);
  float d1 = 0.5f + 0.01f * w1;
  EXPECT_FLOAT_EQ(x.w(0), w1 - 0.1f * (0.9f * d0 + 0.5f * d1));
  EXPECT_EQ(opt->steps(), 2);
}

TEST(Sgd, NesterovNeedsMomentumAndUsesTheLookAhead) {
  EXPECT_THROW(Optimizer::make(cfg({{"type", std::string("sgd")}, {"nesterov", true}})), UsageError);
  OneParam x;
  auto opt = Optimizer::make(cfg({{"type", std::string("sgd")}, {"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}}));
  opt->step(x.named(), 0.1);
  EXPECT_FLOAT_EQ(x.w(0), 1.0f - 0.1f * (0.5f + 0.9f * 0.5f));
}

TEST(Adam, FirstStepMovesEachWeightByLr) {
  // With bias correction, Adam's first update is lr * g / (|g| + eps') ~= lr * sign(g).
  OneParam x;
  auto opt = Optimizer::make(cfg({{"type", std::string("adam")}, {"lr", 0.01}}));
  opt->step(x.named(), 0.01);
  EXPECT_NEAR(x.w(0), 1.0f - 0.01f, 1e-6);
  EXPECT_NEAR(x.w(1), -2.0f - 0.01f, 1e-6);
}

TEST(AdamW, DecaysWeightsBeforeTheUpdate) {
  OneParam x;
  auto opt = Optimizer::make(cfg({{"type", std::string("adamw")}, {"lr", 0.01}, {"weight_decay", 0.1}}));
  opt->step(x.named(), 0.01);
  EXPECT_NEAR(x.w(0), 1.0f * (1 - 0.01f * 0.1f) - 0.01f, 1e-6);
}

TEST(Optimizer, StateDictRoundTripContinuesIdentically) {
  for (const char* type : {"sgd", "adam", "adamw"}) {
    OneParam a, b;
    Group c = cfg({{"type", std::string(type)}, {"lr", 0.05}});
    if (std::string(type) == "sgd") c.set("momentum", 0.9);
    auto oa = Optimizer::make(c);
    oa->step(a.named(), 0.05);
    oa->step(a.named(), 0.05);
    b.p.value = a.p.value.clone();
    auto ob = Optimizer::make(c);
    ob->load_state_dict(oa->state_dict(), b.named());
    EXPECT_EQ(ob->steps(), 2) << type;
    oa->step(a.named(), 0.05);
    ob->step(b.named(), 0.05);
    EXPECT_TRUE(a.p.value.bit_equal(b.p.value)) << type;
  }
}

TEST(Optimizer, BadConfigsNameTheKey) {
  try {
    Optimizer::make(cfg({{"type", std::string("sgd")}, {"lerning_rate", 0.1}}));
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.lerning_rate"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Optimizer::make(cfg({{"type", std::string("rmsprop")}})), UsageError);
  OneParam x;
  auto sgd = Optimizer::make(cfg({{"type", std::string("sgd")}}));
  auto adam = Optimizer::make(cfg({{"type", std::string("adam")}}));
  EXPECT_THROW(sgd->load_state_dict(adam->state_dict(), x.named()), FormatError);
}

TEST(Schedule, StepAndCosineMatchTorchClosedForms) {
  auto step = Schedule::make(cfg({{"type", std::string("step")}, {"step_size", int64_t{2}}, {"gamma", 0.5}}), 0.1);
  std::vector<double> expect = {0.1, 0.1, 0.05, 0.05, 0.025};
  for (double e : expect) {
    EXPECT_DOUBLE_EQ(step->lr(), e);
    step->step();
  }
  auto cos = Schedule::make(cfg({{"type", std::string("cosine")}, {"t_max", int64_t{4}}}), 0.1);
  cos->step();
  cos->step();
  EXPECT_NEAR(cos->lr(), 0.05, 1e-15);
  auto again = Schedule::make(cfg({{"type", std::string("cosine")}, {"t_max", int64_t{4}}}), 0.1);
  again->load_state_dict(cos->state_dict());
  EXPECT_EQ(again->lr(), cos->lr());
  EXPECT_THROW(step->load_state_dict(cos->state_dict()), FormatError);
}
