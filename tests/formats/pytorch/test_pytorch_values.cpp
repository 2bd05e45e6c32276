// What surrounds the weights in the .pt files users bring: NumPy values and plain objects
// (torch_side.py values), and the optimizer state every LR scheduler of torch needs to resume
// (torch_schedulers.py), checked by torch after ckpt converts the file.
#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

#include "pytorch_test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

using namespace ckpt;
using namespace pytorch_test;

namespace {

ConvertOptions to(const char* format) {
  ConvertOptions o;
  o.to = format;
  o.fsync = false;
  return o;
}

std::string schedulers(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "torch_schedulers.py").string() + " " + args;
}

}  // namespace

TEST(PytorchValues, NumpyValuesAndPlainObjectsReadAsThePicklePluginReadsThem) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run(torch_side("values " + tmp.path.string()), out), 0) << out;
  const Checkpoint c = load(tmp.path / "numpy_values.pt");
  EXPECT_EQ(c.model_state.children().size(), 2u);
  EXPECT_EQ(std::get<double>(*c.extra.attribute("best_acc")), 0.91);
  EXPECT_EQ(std::get<int64_t>(*c.extra.attribute("best_epoch")), 7);
  const Tensor* h = c.extra.find_tensor("history");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->dtype(), DType::f32);
  EXPECT_EQ(h->shape(), (std::vector<int64_t>{2, 3}));
  const float* f = reinterpret_cast<const float*>(h->bytes().data());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f[i], static_cast<float>(i) / 4) << i;
  const Group* args = c.extra.find_group("args");
  ASSERT_TRUE(args);
  EXPECT_EQ(std::get<std::string>(*args->attribute("__class__")), "argparse.Namespace");
  EXPECT_EQ(std::get<double>(*args->attribute("lr")), 0.1);
  EXPECT_EQ(std::get<int64_t>(*args->attribute("epochs")), 3);
  EXPECT_EQ(std::get<std::string>(*args->attribute("model")), "resnet18");
  // A pickled model is still refused, naming its class and the way to save it instead.
  try {
    read_document(tmp.path / "whole_model.pt");
    ADD_FAILURE() << "a pickled model was read";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("torch.nn.modules.linear.Linear"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("state_dict()"), std::string::npos) << e.what();
  }
}

// Every scheduler of torch.optim.lr_scheduler, saved by torch beside its optimizer after three
// steps, converted .pt -> .pt and .pt -> msgpack -> .pt, and resumed by torch from the
// conversion as from torch's own file: the optimizer's param group keys the schedulers add
// (initial_lr, ...) survive, a scheduler built with last_epoch finds them, and the next learning
// rates are the same.
TEST(PytorchValues, EveryLrSchedulerResumesFromAConvertedCheckpoint) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run(schedulers("write " + tmp.path.string()), out), 0) << out;
  std::istringstream lines(out);
  std::string name;
  int resumed = 0, refused = 0, lossy = 0;
  while (std::getline(lines, name)) {
    if (name.rfind("unsaveable ", 0) == 0) {  // torch 1.13 cannot save CyclicLR's state (a WeakMethod)
      EXPECT_NE(name.find("CyclicLR"), std::string::npos) << name;
      continue;
    }
    SCOPED_TRACE(name);
    const fs::path src = tmp.path / (name + ".pt");
    if (name == "OneCycleLR") {  // torch 1.13 pickles a bound method of the scheduler into its state
      try {
        read_document(src);
        ADD_FAILURE() << "read";
      } catch (const UnsupportedError& e) {
        EXPECT_NE(std::string(e.what()).find("torch.optim.lr_scheduler.OneCycleLR"), std::string::npos) << e.what();
        ++refused;
      }
      continue;
    }
    const fs::path direct = tmp.path / (name + ".direct.pt");
    const fs::path via = tmp.path / (name + ".msgpack");
    const fs::path back = tmp.path / (name + ".back.pt");
    convert(src, direct, to("pytorch"));
    convert(src, via, to("msgpack"));
    convert(via, back, to("pytorch"));
    for (const fs::path& conv : {direct, back}) {
      std::string r;
      const int status = run(schedulers("resume " + name + " " + src.string() + " " + conv.string()), r);
      // MultiStepLR's milestones are a Counter keyed by int epochs: a document names keys by
      // strings, and the int keys come back as str ones, so the rate no longer decays at its
      // milestones. Issue 20.1's faithful layout (unfinished) keeps key types; until then the
      // test holds that the loss is still there, so the docs' list of losses stays true.
      if (name == "MultiStepLR") {
        EXPECT_NE(status, 0) << r;
        EXPECT_NE(r.find("has lr"), std::string::npos) << r;
        ++lossy;
        continue;
      }
      EXPECT_EQ(status, 0) << conv << ": " << r;
      ++resumed;
    }
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(lossy, 2);
  EXPECT_GE(resumed, 2 * 9) << "StepLR, ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR, "
                               "ConstantLR, PolynomialLR, ReduceLROnPlateau, LambdaLR, MultiplicativeLR";
}
