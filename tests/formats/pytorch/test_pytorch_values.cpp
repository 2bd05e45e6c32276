// What surrounds the weights in the .pt files users bring: NumPy values and plain objects
// (torch_side.py values), and the optimizer state every LR scheduler of torch needs to resume
// (torch_schedulers.py), checked by torch after ckpt converts the file.
#include <ckpt/checkpoint.hpp>
#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>

#include <nlohmann/json.hpp>

#include "pytorch_test_support.hpp"
#include "run_many.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

using namespace ckpt;
using namespace pytorch_test;

namespace {

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
  int resumed = 0, refused = 0;
  std::vector<std::vector<std::string>> resumes;
  std::vector<fs::path> resumed_from;
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
      resumes.push_back({"resume", name, src.string(), conv.string()});
      resumed_from.push_back(conv);
    }
  }
  // Every resume runs in one Python process (run_many.py), not one each.
  const auto results = ckpt_test::run_many(CKPT_PYTHON, kHere / "torch_schedulers.py", resumes, tmp.path);
  for (size_t i = 0; i < results.size(); ++i) {
    // MultiStepLR's milestones are a Counter keyed by int epochs: the user's layout keeps
    // the key type, so its rate still decays at its milestones.
    EXPECT_EQ(results[i].status, 0) << resumed_from[i] << ": " << results[i].output;
    ++resumed;
  }
  EXPECT_EQ(refused, 1);
  EXPECT_GE(resumed, 2 * 10) << "StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR, "
                               "ConstantLR, PolynomialLR, ReduceLROnPlateau, LambdaLR, MultiplicativeLR";
}

// A Hugging Face safetensors file's __metadata__ ({"format": "pt"}) describes the file: it is
// the document's meta, so the .pt made from it is a plain state dict that torch loads strictly
// into the model, and converted back to safetensors it is the same plain file again.
TEST(PytorchValues, SafetensorsMetadataIsMetaNotState) {
  TempDir tmp;
  std::string header = R"({"__metadata__":{"format":"pt"},"weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                       R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header;
  const float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  file.append(reinterpret_cast<const char*>(values), sizeof values);
  std::ofstream(tmp.path / "hf.safetensors", std::ios::binary) << file;

  const Document doc = read_document(tmp.path / "hf.safetensors");
  const Group* meta = doc.find_group("meta");
  ASSERT_TRUE(meta);
  EXPECT_EQ(std::get<std::string>(*meta->attribute("format")), "pt");
  EXPECT_TRUE(doc.attributes().empty());

  convert(tmp.path / "hf.safetensors", tmp.path / "hf.pt", to("pytorch"));
  std::string out;
  EXPECT_EQ(run(std::string(CKPT_PYTHON) + " -c \"import torch; m = torch.nn.Linear(3, 2); sd = torch.load('" +
                    (tmp.path / "hf.pt").string() + "', weights_only=True); print(list(sd)); m.load_state_dict(sd, strict=True)\"",
                out),
            0)
      << out;
  EXPECT_NE(out.find("['weight', 'bias']"), std::string::npos) << out;

  convert(tmp.path / "hf.pt", tmp.path / "back.safetensors", to("safetensors"));
  const std::string back = slurp(tmp.path / "back.safetensors");
  uint64_t m = 0;
  std::memcpy(&m, back.data(), 8);
  const std::string back_header = back.substr(8, m);
  // A plain file again, as Hugging Face's writer made it: the same tensors at the same offsets,
  // format=pt, no document entry; beside format, the hashes convert records in every file it
  // writes (ckpt.integrity: the file verifies, though Hugging Face's had none).
  const auto want = nlohmann::json::parse(header), got = nlohmann::json::parse(back_header);
  for (const char* t : {"weight", "bias"}) EXPECT_EQ(got[t], want[t]) << t;
  EXPECT_EQ(got["__metadata__"]["format"], "pt");
  EXPECT_EQ(got["__metadata__"].size(), 2u) << back_header;
  EXPECT_TRUE(got["__metadata__"].contains("ckpt.integrity")) << back_header;
  const VerifyReport verified = verify(*open(tmp.path / "back.safetensors"));
  EXPECT_TRUE(verified.has_integrity && verified.ok() && verified.tensors_checked == 2);
  const Document again = read_document(tmp.path / "back.safetensors");
  ASSERT_TRUE(again.find_group("meta"));
  EXPECT_EQ(std::get<std::string>(*again.find_group("meta")->attribute("format")), "pt");
}
