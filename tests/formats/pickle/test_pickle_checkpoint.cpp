// Training checkpoint dicts in plain pickles (MegEngine's and joblib's savers) read as ckpt's
// schema, as torch.save's file of the same dict does (core/src/layouts/torch_checkpoint.cpp):
// make_checkpoints.py writes each dict twice, tensors as torch tensors in NAME.pt and as NumPy
// arrays in NAME.pkl, and the two must read as one document, tensor bytes included; converted to
// .pt, torch resumes the model and the optimizer from the pickle's reading.
#include "scratch.hpp"

#include <ckpt/convert.hpp>
#include <ckpt/io.hpp>

#include <gtest/gtest.h>

#include <algorithm>

#include <cstring>

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

using ckpt_test::run;
using ckpt_test::TempDir;

// What either reading holds beside the schema: the codec's own records of the file (the .pt
// reading keeps a None in its user layout; the pickle's names it in meta/@unread, checked below).
bool codec_record(const std::string& path) {
  return path == "meta/@producer" || path == "meta/@torch_layout" || path == "meta/@tensor_aliases" ||
         path == "meta/@unread";
}

// Every difference between two documents, one line each.
void differences(const Group& a, const Group& b, const std::string& at, std::vector<std::string>& out) {
  auto here = [&](const std::string& n) { return at.empty() ? n : at + "/" + n; };
  for (const Attribute& x : a.attributes()) {
    if (codec_record(here("@" + x.name))) continue;
    const Value* y = b.attribute(x.name);
    if (!y) out.push_back(here("@" + x.name) + " only in the .pt reading");
    else if (!value_equal(x.value, *y))
      out.push_back(here("@" + x.name) + ": " + value_to_string(x.value) + " vs " + value_to_string(*y));
  }
  for (const Attribute& y : b.attributes())
    if (!codec_record(here("@" + y.name)) && !a.attribute(y.name)) out.push_back(here("@" + y.name) + " only in the pickle's");
  for (const Node& x : a.children()) {
    const Node* y = b.find(x.name);
    if (!y) {
      out.push_back(here(x.name) + " only in the .pt reading");
    } else if (x.is_group() != y->is_group()) {
      out.push_back(here(x.name) + ": a group in one reading, a tensor in the other");
    } else if (x.is_group()) {
      differences(x.group(), y->group(), here(x.name), out);
    } else if (x.tensor().dtype() != y->tensor().dtype() || x.tensor().shape() != y->tensor().shape()) {
      out.push_back(here(x.name) + ": dtype or shape differ");
    } else if (x.tensor().nbytes() &&
               std::memcmp(x.tensor().bytes().data(), y->tensor().bytes().data(), x.tensor().nbytes()) != 0) {
      out.push_back(here(x.name) + ": bytes differ");
    }
  }
  for (const Node& y : b.children())
    if (!a.find(y.name)) out.push_back(here(y.name) + " only in the pickle's");
}

class PickleCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string out;
    ASSERT_EQ(run(std::string(CKPT_PYTHON) + " " + CKPT_PICKLE_TEST_DIR + "/make_checkpoints.py " + dir_->path.string(), out), 0)
        << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path file(const std::string& n) { return dir_->path / n; }
  static std::vector<std::string> differ(const std::string& name) {
    std::vector<std::string> out;
    differences(read_document(file(name + ".pt")), read_document(file(name + ".pkl")), "", out);
    return out;
  }
  static TempDir* dir_;
};
TempDir* PickleCheckpoint::dir_ = nullptr;

}  // namespace

TEST_F(PickleCheckpoint, ReadsAsTorchSavesFileOfTheSameDict) {
  for (const char* name : {"sgd", "adam", "adamw", "megengine", "unmatched", "two_groups", "uneven_steps", "named_state",
                           "half_loss", "reordered"}) {
    const auto d = differ(name);
    EXPECT_TRUE(d.empty()) << name << ":\n" << [&] {
      std::string s;
      for (const auto& x : d) s += "  " + x + "\n";
      return s;
    }();
  }
}

TEST_F(PickleCheckpoint, MapsModelOptimizerTrainerAndExtra) {
  const Document sgd = read_document(file("sgd.pkl"));
  EXPECT_EQ(std::get<std::string>(*sgd.find_group("meta")->attribute("schema")), "ckpt.checkpoint");
  EXPECT_EQ(std::get<std::string>(*sgd.find_group("meta")->attribute("producer")), "Python pickle");
  // torch's param group holds foreach=None, which the schema defaults (no loss); a None the
  // schema does not hold is named in the schema's meta, so convert names it as a loss, and is
  // not filed under extra as the user's data.
  EXPECT_FALSE(sgd.find_group("meta")->attribute("unread"));
  const Document adamw = read_document(file("adamw.pkl"));
  const auto* unread = std::get_if<std::vector<std::string>>(adamw.find_group("meta")->attribute("unread"));
  ASSERT_TRUE(unread);
  EXPECT_EQ(*unread, std::vector<std::string>{"config/dropout: None, left out: a document has no null"});
  EXPECT_FALSE(adamw.find_group_path("extra/meta"));
  EXPECT_EQ(std::get<int64_t>(*adamw.find_group_path("extra/config")->attribute("depth")), 3);
  ASSERT_TRUE(sgd.find_tensor_path("model/state/fc1.weight"));
  // Optimizer buffers by parameter name; BatchNorm's running statistics are no parameters.
  ASSERT_TRUE(sgd.find_tensor_path("optimizer/state/fc2.bias/momentum_buffer"));
  EXPECT_FALSE(sgd.find_group_path("optimizer/state/bn.running_mean"));
  const Group* opt = sgd.find_group("optimizer");
  EXPECT_EQ(std::get<std::string>(*opt->attribute("type")), "sgd");
  EXPECT_EQ(std::get<double>(*opt->attribute("momentum")), 0.9);
  EXPECT_EQ(std::get<int64_t>(*sgd.find_group("trainer")->attribute("epoch")), 4);
  EXPECT_TRUE(sgd.find_group("trainer")->attribute("loss"));
  EXPECT_EQ(std::get<std::string>(*sgd.find_group("extra")->attribute("note")), "sgd");

  // Adam's step, an array per parameter in the pickle, is the optimizer's one step.
  const Document adam = read_document(file("adam.pkl"));
  EXPECT_EQ(std::get<std::string>(*adam.find_group("optimizer")->attribute("type")), "adam");
  EXPECT_EQ(std::get<int64_t>(*adam.find_group("optimizer")->attribute("step")), 3);
  EXPECT_FALSE(adam.find_tensor_path("optimizer/state/fc1.weight/step"));
  EXPECT_EQ(std::get<int64_t>(*adam.find_group("trainer")->attribute("step")), 90);

  // MegEngine's opt_state is no key of torch's: kept in extra as listed, the model mapped.
  const Document meg = read_document(file("megengine.pkl"));
  EXPECT_TRUE(meg.find_tensor_path("model/state/fc1.weight"));
  EXPECT_FALSE(meg.find_group("optimizer"));
  EXPECT_TRUE(meg.find_group_path("extra/opt_state/param_groups/0"));
  // param_groups that do not index the state dict's parameters: the optimizer stays in extra.
  const Document bad = read_document(file("unmatched.pkl"));
  EXPECT_FALSE(bad.find_group("optimizer"));
  EXPECT_TRUE(bad.find_tensor_path("extra/optimizer_state_dict/state/0/momentum_buffer"));
  for (const char* name : {"two_groups.pkl", "uneven_steps.pkl", "named_state.pkl", "reordered.pkl"}) {
    const Document d = read_document(file(name));
    EXPECT_TRUE(d.find_tensor_path("model/state/fc1.weight")) << name;
    EXPECT_FALSE(d.find_group("optimizer")) << name;
    EXPECT_TRUE(d.find_group_path("extra/optimizer_state_dict/param_groups/0")) << name;
  }
  // A float epoch is no epoch: extra keeps it.
  EXPECT_EQ(std::get<double>(*read_document(file("named_state.pkl")).find_group("extra")->attribute("epoch")), 2.5);
  // One-element tensors read as numbers through the file's bytes, whatever their dtype and order.
  EXPECT_EQ(std::get<double>(*read_document(file("half_loss.pkl")).find_group("trainer")->attribute("loss")), 0.375);
  EXPECT_EQ(std::get<double>(*read_document(file("big_endian_loss.pkl")).find_group("trainer")->attribute("loss")), 0.625);
  // The user's object that holds a state dict is read as the object it is, without a schema.
  const Document holder = read_document(file("holder.pkl"));
  EXPECT_FALSE(holder.find_group("meta"));
  EXPECT_TRUE(holder.find_tensor_path("model/fc1.weight"));
}

TEST_F(PickleCheckpoint, ConvertedToPtTorchResumesModelAndOptimizer) {
  for (const char* name : {"sgd", "adam"}) convert(file(std::string(name) + ".pkl"), file(std::string(name) + ".back.pt"));
  std::string out;
  ASSERT_EQ(run(std::string(CKPT_PYTHON) + " " + CKPT_PICKLE_TEST_DIR + "/make_checkpoints.py load " + dir_->path.string() +
                    " sgd adam",
                out),
            0)
      << out;
  EXPECT_NE(out.find("sgd: resumed"), std::string::npos) << out;
  EXPECT_NE(out.find("adam: resumed"), std::string::npos) << out;
}
