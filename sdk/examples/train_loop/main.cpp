// A training loop that checkpoints with ckpt::ckpt: fits y = 3x + 1 by gradient descent, saves
// the model, optimizer and trainer state after every epoch, and resumes from the checkpoint
// when there is one, so a killed run goes on where it stopped.
//   train_loop CHECKPOINT [EPOCHS]     the format follows CHECKPOINT's extension
#include <ckpt/io.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: train_loop CHECKPOINT [EPOCHS]\n"), 2;
  const std::filesystem::path path = argv[1];
  const int64_t epochs = argc > 2 ? std::stoll(argv[2]) : 50;
  float w = 0, b = 0, loss = 0;
  int64_t epoch = 0;
  if (std::filesystem::exists(path)) {
    ckpt::Checkpoint c = ckpt::load(path, {.verify = true});
    w = c.model_state.find_tensor("weight")->data<float>()[0];
    b = c.model_state.find_tensor("bias")->data<float>()[0];
    epoch = std::get<int64_t>(*c.trainer.attribute("epoch"));
    loss = static_cast<float>(std::get<double>(*c.trainer.attribute("loss")));
  }
  for (; epoch < epochs; ++epoch) {
    float gw = 0, gb = 0;
    loss = 0;
    for (int i = 0; i < 32; ++i) {
      float x = static_cast<float>(i) / 32, err = w * x + b - (3 * x + 1);
      gw += 2 * err * x / 32, gb += 2 * err / 32, loss += err * err / 32;
    }
    w -= 0.5f * gw, b -= 0.5f * gb;
    ckpt::Checkpoint c;
    c.model_spec.set("type", "linear").set("in_features", 1).set("out_features", 1);
    c.model_state.add_tensor("weight", ckpt::Tensor::from<float>(ckpt::DType::f32, {1, 1}, {w}));
    c.model_state.add_tensor("bias", ckpt::Tensor::from<float>(ckpt::DType::f32, {1}, {b}));
    c.optimizer.set("type", "sgd").set("lr", 0.5);
    c.trainer.set("epoch", epoch + 1).set("loss", loss);
    ckpt::save(c, path);
  }
  std::printf("epoch %lld: weight %.9g bias %.9g loss %.9g\n", static_cast<long long>(epoch), w, b, loss);
}
