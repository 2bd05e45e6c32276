// train::model_from_checkpoint (what ckpt serve, eval and predict rebuild a model with) on
// checkpoints whose model/spec names other parameters than model/state holds: refused with an
// error naming each parameter, before the model is built, so a small file cannot make the
// process allocate what its spec names.
#include "scratch.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>
#include <ckpt/train/manager.hpp>
#include <ckpt/train/model.hpp>
#include <ckpt/train/trainer.hpp>

#include <gtest/gtest.h>

#include <sys/resource.h>

using namespace ckpt;
using namespace ckpt::train;

namespace {

// The process's peak resident set so far, in bytes (Linux reports kilobytes).
uint64_t peak_rss() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

// A real checkpoint of a 784-16-10 MLP (about 51 KB of parameters), as ckpt train saves one.
Checkpoint small_mlp() {
  auto m = Model::from_spec(Model::mlp_spec(784, {16}, 10), 7);
  Checkpoint c;
  c.model_spec = m->spec();
  c.model_state = clone_tensors(m->state_dict());
  return c;
}

std::string error_of(const Checkpoint& c) {
  try {
    model_from_checkpoint(c);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no FormatError)";
}

TEST(ModelFromCheckpoint, ASpecNamingHugeLayersOverASmallStateIsRefusedBeforeAnythingIsAllocated) {
  ckpt_test::TempDir dir("model-from-ckpt");
  Checkpoint c = small_mlp();
  // fc1 784 -> 500000 and fc2 500000 -> 10: a model of 3.1 GB (weights and gradients, f32)
  // that would be built and randomly initialised before its state was found not to fit.
  c.model_spec.group("fc1").set("out_features", 500000);
  c.model_spec.group("fc2").set("in_features", 500000);
  ckpt::save(c, dir / "crafted.msgpack");
  ASSERT_LT(fs::file_size(dir / "crafted.msgpack"), 100u * 1024);
  const Checkpoint loaded = ckpt::load(dir / "crafted.msgpack");

  const uint64_t before = peak_rss();
  const std::string e = error_of(loaded);
  const uint64_t after = peak_rss();
  EXPECT_NE(e.find("model/state/fc1.weight: [16, 784], but model/spec makes it [500000, 784]"), std::string::npos) << e;
  EXPECT_NE(e.find("model/state/fc1.bias: [16], but model/spec makes it [500000]"), std::string::npos) << e;
  EXPECT_NE(e.find("model/state/fc2.weight: [10, 16], but model/spec makes it [10, 500000]"), std::string::npos) << e;
  EXPECT_EQ(e.find("fc2.bias"), std::string::npos) << e;  // it fits
  EXPECT_LT(after - before, uint64_t{200} << 20) << "peak resident set grew by " << (after - before) << " bytes";
}

TEST(ModelFromCheckpoint, MissingParametersAndIntegerDtypesAreNamed) {
  Checkpoint c = small_mlp();
  c.model_state.erase("fc2.bias");
  c.model_state.set_tensor("fc1.bias", Tensor::zeros(DType::i32, {16}));
  const std::string e = error_of(c);
  EXPECT_NE(e.find("model/state/fc2.bias: missing (model/spec makes it [10])"), std::string::npos) << e;
  EXPECT_NE(e.find("model/state/fc1.bias: i32, not a floating dtype"), std::string::npos) << e;
}

TEST(ModelFromCheckpoint, AStateThatFitsItsSpecStillBuildsTheModel) {
  const Checkpoint c = small_mlp();
  auto m = model_from_checkpoint(c);
  EXPECT_EQ(m->output_shape(3), (Shape{3, 10}));
  // The parameters are the checkpoint's, not a fresh initialisation.
  const Group state = m->state_dict();
  const Tensor* w = state.find_tensor("fc1.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(std::vector<float>(w->data<float>().begin(), w->data<float>().end()),
            std::vector<float>(c.model_state.find_tensor("fc1.weight")->data<float>().begin(),
                               c.model_state.find_tensor("fc1.weight")->data<float>().end()));
}

}  // namespace
