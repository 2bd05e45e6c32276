// Optimizer and schedule arithmetic against PyTorch's documented update rules, and their
// state dicts.
#include <ckpt/errors.hpp>
#include <ckpt/train/optimizer.hpp>
#include <ckpt/train/schedule.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

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

// ZeRO stage 1 (docs/scaling.md): an optimizer sharded over N ranks updates only its rows and
// keeps state for them; with the rows exchanged after each step (the trainer's all-gather) the
// parameters and the state are bit-identical to one unsharded optimizer's.
namespace {

struct Params {
  std::vector<Parameter> p;
  NamedParameters named() {
    NamedParameters out;
    for (auto& q : p) out.emplace_back(q.name, &q);
    return out;
  }
};

// Three tensors: 5 rows (2, 2, 1 at 3 ranks), 5 rows of a bias, 2 rows (one rank has none).
Params make_params() {
  Params x;
  for (Shape s : {Shape{5, 3}, Shape{5}, Shape{2, 4}}) {
    Tensor v = Tensor::empty(DType::f32, s), g = Tensor::empty(DType::f32, s);
    auto vd = v.mutable_data<float>();
    for (size_t i = 0; i < vd.size(); ++i) vd[i] = std::sin(static_cast<float>(i + s.size())) * 0.7f;
    x.p.push_back({"t" + std::to_string(x.p.size()), v, g});
  }
  return x;
}

void set_grads(Params& x, int step) {
  for (size_t k = 0; k < x.p.size(); ++k) {
    auto g = x.p[k].grad.mutable_data<float>();
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(static_cast<float>(i * 3 + k + static_cast<size_t>(step) * 7)) * 0.3f;
  }
}

}  // namespace

TEST(ShardedOptimizer, RowRangesAreContiguousAndDifferByAtMostOne) {
  for (int64_t rows : {0, 1, 2, 5, 32, 33}) {
    for (int world : {1, 2, 3, 4}) {
      int64_t next = 0, smallest = rows, largest = 0;
      for (int r = 0; r < world; ++r) {
        auto [lo, hi] = Optimizer::rows_of(rows, r, world);
        EXPECT_EQ(lo, next) << rows << " rows, rank " << r << " of " << world;
        smallest = std::min(smallest, hi - lo);
        largest = std::max(largest, hi - lo);
        next = hi;
      }
      EXPECT_EQ(next, rows);
      EXPECT_LE(largest - smallest, 1);
    }
  }
}

TEST(ShardedOptimizer, ThreeRanksOfRowsEqualOneOptimizerBitForBit) {
  const int world = 3;
  for (const char* type : {"sgd", "adam", "adamw"}) {
    SCOPED_TRACE(type);
    Group c = cfg({{"type", std::string(type)}, {"lr", 0.05}, {"weight_decay", 0.01}});
    if (std::string(type) == "sgd") c.set("momentum", 0.9).set("nesterov", true);
    Params whole = make_params();
    auto one = Optimizer::make(c);
    std::vector<Params> ranks;
    std::vector<std::unique_ptr<Optimizer>> opts;
    for (int r = 0; r < world; ++r) {
      ranks.push_back(make_params());
      opts.push_back(Optimizer::make(c));
      opts.back()->shard(r, world);
    }
    for (int step = 0; step < 3; ++step) {
      set_grads(whole, step);
      one->step(whole.named(), 0.05);
      for (int r = 0; r < world; ++r) {
        set_grads(ranks[r], step);
        // Rows that are not this rank's stay as they were until the all-gather.
        std::vector<Tensor> before;
        for (auto& q : ranks[r].p) before.push_back(q.value.clone());
        opts[r]->step(ranks[r].named(), 0.05);
        for (size_t k = 0; k < before.size(); ++k) {
          auto [lo, hi] = opts[r]->my_rows(before[k].shape());
          const size_t per_row = before[k].numel() / static_cast<size_t>(before[k].shape()[0]);
          auto b = before[k].data<float>(), a = ranks[r].p[k].value.data<float>();
          for (size_t i = 0; i < b.size(); ++i)
            if (i < static_cast<size_t>(lo) * per_row || i >= static_cast<size_t>(hi) * per_row) {
              EXPECT_EQ(a[i], b[i]) << k << " " << i;
            }
        }
      }
      // The all-gather: every rank's rows into every rank's copy.
      for (size_t k = 0; k < whole.p.size(); ++k) {
        const Shape& s = whole.p[k].value.shape();
        const size_t per_row = whole.p[k].value.numel() / static_cast<size_t>(s[0]);
        for (int r = 0; r < world; ++r) {
          auto [lo, hi] = Optimizer::rows_of(s[0], r, world);
          auto src = ranks[r].p[k].value.data<float>().subspan(static_cast<size_t>(lo) * per_row, static_cast<size_t>(hi - lo) * per_row);
          for (int to = 0; to < world; ++to)
            std::copy(src.begin(), src.end(), ranks[to].p[k].value.mutable_data<float>().begin() + lo * static_cast<int64_t>(per_row));
        }
        for (int r = 0; r < world; ++r) EXPECT_TRUE(ranks[r].p[k].value.bit_equal(whole.p[k].value)) << "step " << step << " tensor " << k;
      }
    }
    // Each rank's state is its rows of the unsharded state; a sharded optimizer loading the whole
    // state takes its rows, and one loading its own rows keeps them.
    const Group full = one->state_dict();
    for (int r = 0; r < world; ++r) {
      const Group mine = opts[r]->state_dict();
      size_t buffers = 0;
      full.find_group("state")->for_each_tensor([&](const std::string& path, const Tensor& t) {
        const Tensor* m = mine.find_group("state")->find_tensor_path(path);
        ASSERT_NE(m, nullptr) << path;
        auto [lo, hi] = Optimizer::rows_of(t.shape()[0], r, world);
        const size_t per_row = t.numel() / static_cast<size_t>(t.shape()[0]);
        EXPECT_EQ(m->shape()[0], hi - lo) << path;
        auto want = t.data<float>().subspan(static_cast<size_t>(lo) * per_row, static_cast<size_t>(hi - lo) * per_row);
        auto got = m->data<float>();
        EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end())) << path;
        ++buffers;
      });
      EXPECT_EQ(buffers, std::string(type) == "sgd" ? 3u : 6u);
      for (const Group* from : {&full, &mine}) {
        auto o = Optimizer::make(c);
        o->shard(r, world);
        o->load_state_dict(*from, ranks[r].named(), from == &mine);
        EXPECT_EQ(o->steps(), 3);
        mine.find_group("state")->for_each_tensor([&](const std::string& path, const Tensor& t) {
          EXPECT_TRUE(o->state_dict().find_group("state")->find_tensor_path(path)->bit_equal(t)) << path;
        });
      }
    }
    // A buffer of neither shape is refused, naming both.
    Group bad = full;
    bad.group("state").group("t0").set_tensor(std::string(type) == "sgd" ? "momentum_buffer" : "exp_avg",
                                              Tensor::zeros(DType::f32, {4, 3}));
    auto o = Optimizer::make(c);
    o->shard(1, world);
    try {
      o->load_state_dict(bad, ranks[1].named());
      ADD_FAILURE() << "a [4, 3] buffer of a [5, 3] parameter was accepted";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("does not match the parameter's f32 [5, 3]"),
                std::string::npos)
          << e.what();
    }
  }
}

// A whole-tensor checkpoint whose buffer happens to have this rank's rows' shape is not this
// rank's rows: without own_rows every rank refuses it (before, ranks 0 and 1 of 3, whose rows of
// the [5, 3] parameter are [2, 3], took it); with own_rows, a whole buffer is refused instead.
TEST(ShardedOptimizer, RowsShapeIsTakenOnlyWhenTheCallerPassesRows) {
  const int world = 3;
  Group c = cfg({{"type", std::string("adam")}, {"lr", 0.05}});
  Params whole = make_params();
  auto one = Optimizer::make(c);
  set_grads(whole, 0);
  one->step(whole.named(), 0.05);
  const Group full = one->state_dict();
  Group cut = full;
  cut.group("state").group("t0").set_tensor("exp_avg", Tensor::zeros(DType::f32, {2, 3}));
  for (int r = 0; r < world; ++r) {
    SCOPED_TRACE(r);
    Params p = make_params();
    auto o = Optimizer::make(c);
    o->shard(r, world);
    try {
      o->load_state_dict(cut, p.named());
      ADD_FAILURE() << "a [2, 3] exp_avg of a [5, 3] parameter was taken from a whole-tensor state";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("optimizer/state/t0/exp_avg: f32 [2, 3] does not match the parameter's f32 [5, 3]"),
                std::string::npos)
          << e.what();
    }
    try {
      o->load_state_dict(full, p.named(), true);
      ADD_FAILURE() << "a whole [5, 3] exp_avg was taken as rank " << r << "'s rows";
    } catch (const FormatError& e) {
      const std::string rows = r < 2 ? "[2, 3]" : "[1, 3]";
      EXPECT_NE(std::string(e.what()).find("optimizer/state/t0/exp_avg: f32 [5, 3] does not match this rank's f32 rows " + rows +
                                           " of the parameter's [5, 3]"),
                std::string::npos)
          << e.what();
    }
  }
}
