// How torch's checkpoint dicts map onto ckpt's schema, checked on files torch.save wrote
// (torch_side.py write_layouts): every key alias of the PyTorch, MegEngine and Lightning
// guides, optimizers the schema cannot express kept whole in `extra`, and ckpt's own files read
// through data.pkl alone once ckpt/document.json is gone (as after torch loads and saves one).
#include <ckpt/checkpoint.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/io.hpp>

#include "pytorch_test_support.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <iterator>
#include <vector>

using namespace ckpt;
using namespace pytorch_test;

namespace {

// torch_side.py's Small model: its state dict, and the parameters (not buffers) in the order
// torch's optimizers index them.
const char* const kState[] = {"fc1.weight",     "fc1.bias",      "bn.weight",
                              "bn.bias",        "bn.running_mean", "bn.running_var",
                              "bn.num_batches_tracked", "fc2.weight", "fc2.bias"};
const char* const kParams[] = {"fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"};

// expect/<stem>.state.<index>.<key> for every tensor of the optimizer's per-parameter state.
struct StateFile {
  int index;
  std::string key;
  fs::path file;
};
std::vector<StateFile> state_files(const fs::path& expect, const std::string& stem) {
  std::vector<StateFile> out;
  const std::string prefix = stem + ".state.";
  for (const auto& e : fs::directory_iterator(expect)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    const std::string rest = n.substr(prefix.size());
    const size_t dot = rest.find('.');
    out.push_back({std::stoi(rest.substr(0, dot)), rest.substr(dot + 1), e.path()});
  }
  return out;
}

void expect_model_state(const Checkpoint& c, const fs::path& expect, const std::string& stem) {
  ASSERT_EQ(c.model_state.children().size(), std::size(kState));
  for (size_t i = 0; i < std::size(kState); ++i) {
    SCOPED_TRACE(kState[i]);
    EXPECT_EQ(c.model_state.children()[i].name, kState[i]);
    const Tensor* t = c.model_state.find_tensor(kState[i]);
    ASSERT_TRUE(t);
    EXPECT_EQ(bytes_of(*t), slurp(expect / (stem + ".model." + kState[i])));
  }
}

// The groups a checkpoint's data.pkl can hold (model/spec and meta live only in
// ckpt/document.json), as one document to diff.
Document body(const Checkpoint& c) {
  Document d;
  d.group("model").group("state") = c.model_state;
  d.group("optimizer") = c.optimizer;
  d.group("trainer") = c.trainer;
  d.group("extra") = c.extra;
  return d;
}

}  // namespace

TEST_F(PytorchFormat, CheckpointDictKeyAliasesMapOntoTheSchema) {
  struct Case {
    const char* stem;
    const char* optimizer;  // nullptr: the file has none
    std::vector<std::string> buffers;
    std::function<void(const Group&)> trainer;
  };
  const Case cases[] = {
      {"alias_model", "sgd", {"momentum_buffer"},
       [](const Group& t) { EXPECT_EQ(std::get<int64_t>(*t.attribute("epoch")), 4); }},
      {"alias_net", "adam", {"exp_avg", "exp_avg_sq"},
       [](const Group& t) {
         EXPECT_EQ(std::get<int64_t>(*t.attribute("step")), 7);  // "iteration"
         EXPECT_EQ(std::get<double>(*t.attribute("loss")), 0.5);  // a one-element tensor
       }},
      {"alias_state_dict", nullptr, {},
       [](const Group& t) {
         EXPECT_EQ(std::get<int64_t>(*t.attribute("epoch")), 2);
         EXPECT_EQ(std::get<int64_t>(*t.attribute("step")), 100);  // "global_step"
       }},
  };
  const fs::path expect = fixture("expect");
  for (const Case& k : cases) {
    SCOPED_TRACE(k.stem);
    const Checkpoint c = load(fixture(std::string(k.stem) + ".pt"));
    EXPECT_EQ(c.producer, "PyTorch (torch.save)");
    expect_model_state(c, expect, k.stem);
    k.trainer(c.trainer);
    EXPECT_TRUE(c.extra.empty()) << "every key of the file found its place";
    if (!k.optimizer) {
      EXPECT_TRUE(c.optimizer.empty());
      continue;
    }
    EXPECT_EQ(std::get<std::string>(*c.optimizer.attribute("type")), k.optimizer);
    // torch's state[i] is the state of the i-th parameter: the buffers' names are skipped.
    size_t seen = 0;
    for (const StateFile& s : state_files(expect, k.stem)) {
      if (s.key == "step") continue;  // Adam's per-parameter step is the one @step
      ASSERT_LT(static_cast<size_t>(s.index), std::size(kParams));
      const std::string path = std::string("state/") + kParams[s.index] + "/" + s.key;
      const Tensor* t = c.optimizer.find_tensor_path(path);
      ASSERT_TRUE(t) << path;
      EXPECT_EQ(bytes_of(*t), slurp(s.file)) << path;
      ++seen;
    }
    EXPECT_EQ(seen, std::size(kParams) * k.buffers.size());
    for (const char* p : kParams)
      for (const std::string& b : k.buffers) EXPECT_TRUE(c.optimizer.find_tensor_path(std::string("state/") + p + "/" + b)) << p << "/" << b;
    if (std::string(k.optimizer) == "adam") {
      EXPECT_EQ(std::get<int64_t>(*c.optimizer.attribute("step")), 3);
    }
  }
}

TEST_F(PytorchFormat, OptimizersTheSchemaCannotExpressAreKeptWholeInExtra) {
  struct Case {
    const char* stem;
    const char* key;  // the optimizer's key in the file, and so in extra
    size_t groups;
    std::function<void(const Group& opt)> check;
  };
  const Case cases[] = {
      {"two_groups", "optimizer_state_dict", 2,
       [](const Group& o) {
         const Group* g0 = o.find_group_path("param_groups/0");
         const Group* g1 = o.find_group_path("param_groups/1");
         ASSERT_TRUE(g0 && g1);
         EXPECT_EQ(std::get<double>(*g0->attribute("lr")), 0.1);
         EXPECT_EQ(std::get<double>(*g1->attribute("lr")), 0.01);
         EXPECT_EQ(std::get<std::vector<int64_t>>(*g0->attribute("params")), (std::vector<int64_t>{0, 1, 2}));
         EXPECT_EQ(std::get<std::vector<int64_t>>(*g1->attribute("params")), (std::vector<int64_t>{3, 4, 5}));
       }},
      {"rmsprop", "optimizer_state_dict", 1,  // momentum, but not SGD
       [](const Group& o) {
         const Group* g = o.find_group_path("param_groups/0");
         ASSERT_TRUE(g);
         EXPECT_EQ(std::get<double>(*g->attribute("momentum")), 0.5);
         EXPECT_EQ(std::get<double>(*g->attribute("alpha")), 0.99);
         EXPECT_EQ(std::get<int64_t>(*o.find_group_path("state/0")->attribute("step")), 3);
       }},
      {"adamax", "optimizer", 1,  // betas, but not Adam
       [](const Group& o) {
         const Group* g = o.find_group_path("param_groups/0");
         ASSERT_TRUE(g);
         EXPECT_EQ(std::get<std::vector<double>>(*g->attribute("betas")), (std::vector<double>{0.9, 0.999}));
         EXPECT_FALSE(g->attribute("amsgrad"));
       }},
      {"partial", "optimizer_state_dict", 1,  // 2 parameters of the model's 6
       [](const Group& o) {
         EXPECT_EQ(std::get<std::vector<int64_t>>(*o.find_group_path("param_groups/0")->attribute("params")),
                   (std::vector<int64_t>{0, 1}));
       }},
  };
  // An optimizer over the parameters in another order: paired by position, its buffers would
  // be filed under parameters of other shapes (fc2's [2, 3] momentum under fc1.weight [3, 4]).
  auto all_six = [](const Group& o) {
    EXPECT_EQ(std::get<std::vector<int64_t>>(*o.find_group_path("param_groups/0")->attribute("params")),
              (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  };
  const Case reordered[] = {{"reordered_sgd", "optimizer", 1, all_six},
                            {"reordered_adam", "optimizer_state_dict", 1, all_six}};
  const fs::path expect = fixture("expect");
  std::vector<Case> all(std::begin(cases), std::end(cases));
  all.insert(all.end(), std::begin(reordered), std::end(reordered));
  for (const Case& k : all) {
    SCOPED_TRACE(k.stem);
    const Checkpoint c = load(fixture(std::string(k.stem) + ".pt"));
    expect_model_state(c, expect, k.stem);
    EXPECT_EQ(std::get<int64_t>(*c.trainer.attribute("epoch")), 1);
    EXPECT_TRUE(c.optimizer.empty()) << "mistaken for an optimizer ckpt knows";
    const Group* o = c.extra.find_group(k.key);
    ASSERT_TRUE(o) << "extra/" << k.key;
    ASSERT_TRUE(o->find_group("param_groups"));
    EXPECT_EQ(o->find_group("param_groups")->children().size(), k.groups);
    // Nothing lost: every state tensor torch saved, with its bytes, under its torch index.
    const auto files = state_files(expect, k.stem);
    EXPECT_FALSE(files.empty());
    for (const StateFile& s : files) {
      const std::string path = "state/" + std::to_string(s.index) + "/" + s.key;
      const Tensor* t = o->find_tensor_path(path);
      ASSERT_TRUE(t) << path;
      EXPECT_EQ(bytes_of(*t), slurp(s.file)) << path;
    }
    k.check(*o);
  }
}

TEST_F(PytorchFormat, OurFilesReadThroughDataPklAloneWithoutDocumentJson) {
  TempDir tmp;
  for (const char* src : {"mlp_checkpoint.pt", "convnet_checkpoint.pt"}) {
    for (const bool python_floats : {false, true}) {
      SCOPED_TRACE(std::string(src) + (python_floats ? " floats=python" : " floats=tensor"));
      Checkpoint c = load(fixture(src));
      c.trainer.set("best_accuracy", 0.875).set("metrics", std::vector<double>{0.5, 0.25}).set("seen", int64_t{3840});
      c.extra.set("lr_scale", 0.5).set("tags", std::vector<std::string>{"a", "b"});
      Group& sub = c.extra.group("ema");
      sub.add_tensor("decay_steps", Tensor::from<int64_t>(DType::i64, {2}, {10, 20}));
      sub.set("decay", 0.999);
      const fs::path ours = tmp.path / "ours.pt";
      save(c, ours, as_pytorch(python_floats ? Options{{"floats", "python"}} : Options{}));
      const fs::path bare = tmp.path / "bare.pt";
      std::string out;
      ASSERT_EQ(run(torch_side("strip-document " + ours.string() + " " + bare.string()), out), 0) << out;

      const Checkpoint with_json = load(ours);
      const Checkpoint without = load(bare);
      EXPECT_EQ(without.producer, "PyTorch (torch.save)") << "read through data.pkl";
      EXPECT_TRUE(without.model_spec.empty());  // model/spec lives only in document.json
      const DiffReport d = diff_documents(body(with_json), body(without));
      EXPECT_TRUE(d.identical()) << d.entries.front().path << ": " << d.entries.front().detail;
      EXPECT_EQ(d.tensors_compared, body(with_json).tensor_count());
      EXPECT_GT(d.tensors_compared, 8u);
      EXPECT_EQ(body(without).tensor_count(), body(with_json).tensor_count());
    }
  }
}
