// TorchScript archives (torch_script.py): read without running anything, their parameters and
// buffers are the model's state, named and ordered as torch.jit.load(f).state_dict() gives
// them, bit for bit; their code, constants, module attributes and extra files are kept.
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

std::string script(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "torch_script.py").string() + " " + args;
}

}  // namespace

TEST(PytorchTorchScript, ParametersAndBuffersAreStateDictExactly) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run(script("write " + tmp.path.string()), out), 0) << out;
  std::istringstream lines(out);
  int archives = 0;
  for (std::string name; std::getline(lines, name);) {
    SCOPED_TRACE(name);
    const Document doc = read_document(tmp.path / (name + ".pt"));
    const Document expected = read_document(tmp.path / (name + ".expected.pt"));
    const Group* state = doc.find_group_path("model/state");
    ASSERT_TRUE(state);
    std::vector<const Node*> want;
    for (const auto& c : expected.children())
      if (c.is_tensor()) want.push_back(&c);
    ASSERT_EQ(state->children().size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const auto& got = state->children()[i];
      ASSERT_EQ(got.name, want[i]->name) << i;
      ASSERT_TRUE(got.is_tensor());
      EXPECT_EQ(got.tensor().dtype(), want[i]->tensor().dtype()) << got.name;
      EXPECT_EQ(got.tensor().shape(), want[i]->tensor().shape()) << got.name;
      EXPECT_EQ(bytes_of(got.tensor()), bytes_of(want[i]->tensor())) << got.name;
    }
    const Group* ts = doc.find_group_path("extra/torchscript");
    ASSERT_TRUE(ts);
    const auto& files = std::get<std::vector<std::string>>(*ts->attribute("code_files"));
    const auto& code = std::get<std::vector<std::string>>(*ts->attribute("code"));
    ASSERT_EQ(files.size(), code.size());
    ASSERT_FALSE(code.empty());
    EXPECT_NE(code[0].find("def forward"), std::string::npos) << code[0];
    EXPECT_EQ(std::get<std::vector<std::string>>(*ts->attribute("extra_files")), std::vector<std::string>{"config.json"});
    EXPECT_EQ(std::get<std::vector<std::string>>(*ts->attribute("extra_contents"))[0], R"({"source": "ckpt test"})");
    EXPECT_EQ(std::get<bool>(*ts->find_group("attributes")->attribute("training")), false);
    if (name == "constant") {
      const Tensor* c = ts->find_tensor_path("constants/0");
      ASSERT_TRUE(c);
      const float* f = reinterpret_cast<const float*>(c->bytes().data());
      EXPECT_EQ(f[0], 3.0f);
      EXPECT_EQ(f[1], 4.0f);
    }
    ++archives;
  }
  EXPECT_EQ(archives, 8);
  // Code that is not as torch prints it is refused, not guessed at; so is an archive without
  // its code.
  for (const char* name : {"single_quotes", "comment_in_list", "declared_twice", "no_code"}) {
    SCOPED_TRACE(name);
    EXPECT_THROW(read_document(tmp.path / ("edited_" + std::string(name) + ".pt")), FormatError);
  }
}

// Converted to a .pt checkpoint, a scripted model's weights load strictly into the torchvision
// model it was scripted from, which then computes what the archive computes.
TEST(PytorchTorchScript, ConvertedWeightsLoadStrictlyAndPredictTheSame) {
  TempDir tmp;
  std::string out;
  ASSERT_EQ(run(script("write " + tmp.path.string()), out), 0) << out;
  for (const char* arch : {"resnet18", "mobilenet_v3_small"}) {
    SCOPED_TRACE(arch);
    const fs::path conv = tmp.path / (std::string(arch) + ".converted.pt");
    convert(tmp.path / (std::string(arch) + "_scripted.pt"), conv, to("pytorch"));
    EXPECT_EQ(run(script(std::string("strict ") + arch + " " + conv.string()), out), 0) << out;
  }
}
