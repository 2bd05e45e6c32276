// ckpt/model_spec.hpp: the one copy of model/spec's rules. Each refusal has the short wording the
// ONNX layout keeps in files (reason()) and the long one the trainer shows (what()); both are
// pinned here, since a file written with one reason must read back with the same one.
#include <ckpt/model_spec.hpp>

#include <gtest/gtest.h>

#include <functional>

namespace ckpt::model_spec {
namespace {

Group mlp() {
  Group g;
  g.set("type", "sequential");
  g.set("input_shape", std::vector<int64_t>{4});
  g.set("layers", std::vector<std::string>{"fc1", "relu1", "fc2"});
  g.add_group("fc1").set("type", "linear").set("in_features", 4).set("out_features", 8);
  g.add_group("relu1").set("type", "relu");
  g.add_group("fc2").set("type", "linear").set("in_features", 8).set("out_features", 3).set("bias", false);
  return g;
}

struct Words {
  std::string reason, detail;
};

Words refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const SpecError& e) {
    return {e.reason(), e.what()};
  }
  ADD_FAILURE() << "not refused";
  return {};
}

Words parse_refusal(const Group& g) {
  return refusal([&] { layer_shapes(parse(g)); });
}

TEST(ModelSpec, ParsesWithDefaultsAndInfersShapesAndParameters) {
  const SequentialSpec s = parse(mlp());
  ASSERT_EQ(s.layers.size(), 3u);
  EXPECT_EQ(s.layers[0].type, LayerType::linear);
  EXPECT_TRUE(s.layers[0].bias);  // the default
  EXPECT_FALSE(s.layers[2].bias);
  EXPECT_EQ(layer_shapes(s), (std::vector<Shape>{{1, 8}, {1, 8}, {1, 3}}));
  const auto p = parameters(s.layers[0]);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "weight");
  EXPECT_EQ(p[0].shape, (Shape{8, 4}));
  EXPECT_EQ(p[1].shape, (Shape{8}));
  EXPECT_EQ(parameters(s.layers[2]).size(), 1u);
  EXPECT_TRUE(parameters(s.layers[1]).empty());
}

TEST(ModelSpec, ConvAndPoolDefaultsAndWrittenBackAsParsed) {
  Group g;
  g.set("type", "sequential");
  g.set("input_shape", std::vector<int64_t>{1, 28, 28});
  g.set("layers", std::vector<std::string>{"conv1", "pool1", "flatten", "softmax"});
  g.add_group("conv1").set("type", "conv2d").set("in_channels", 1).set("out_channels", 10).set("kernel_size", 5);
  g.add_group("pool1").set("type", "maxpool2d").set("kernel_size", std::vector<int64_t>{2, 3});
  g.add_group("flatten").set("type", "flatten");
  g.add_group("softmax").set("type", "softmax").set("dim", -1);
  const SequentialSpec s = parse(g);
  EXPECT_EQ(s.layers[0].stride, (Pair{1, 1}));
  EXPECT_EQ(s.layers[0].padding, (Pair{0, 0}));
  EXPECT_EQ(s.layers[1].stride, (Pair{2, 3}));  // maxpool2d's stride defaults to its kernel
  EXPECT_EQ(layer_shapes(s).back(), (Shape{1, 10 * 12 * 8}));
  EXPECT_EQ(output_shape(s.layers[0], {7, 1, 28, 28}), (Shape{7, 10, 24, 24}));

  Group written;
  write(written, "spec", s);
  const SequentialSpec again = parse(*written.find_group("spec"));
  Group rewritten;
  write(rewritten, "spec", again);
  EXPECT_EQ(value_to_string(*written.find_group("spec")->find_group("conv1")->attribute("kernel_size")), "5");
  EXPECT_EQ(value_to_string(*written.find_group("spec")->find_group("pool1")->attribute("stride")), "[2, 3]");
  EXPECT_EQ(written.find_group("spec")->find_group("conv1")->attributes().size(), 7u);  // defaults written out
  EXPECT_EQ(again.layers[1].kernel, s.layers[1].kernel);
  EXPECT_EQ(again.layers[3].dim, -1);
}

TEST(ModelSpec, EachRefusalKeepsBothWordings) {
  Group g = mlp();
  g.set("type", "graph");
  Words w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec: type must be \"sequential\"");
  EXPECT_EQ(w.detail, "model/spec: type must be \"sequential\"; got \"graph\"");

  g = mlp();
  g.set("input_shape", std::vector<int64_t>{4, 0});
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec: input_shape must hold positive sizes");
  EXPECT_EQ(w.detail.rfind("model/spec: input_shape must be a non-empty int64 array of positive sizes; got ", 0), 0u) << w.detail;

  g = mlp();
  g.set("layers", std::vector<std::string>{"fc1", "fc1"});
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec: layer \"fc1\" is listed twice");
  EXPECT_EQ(w.detail, "model/spec: layer \"fc1\" is listed twice in layers");

  g = mlp();
  g.set("layers", std::vector<std::string>{"fc1", "a/b"});
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec: layer \"a/b\" has no group");
  EXPECT_EQ(w.detail.rfind("model/spec: layer name \"a/b\": ", 0), 0u) << w.detail;

  g = mlp();
  g.find_group("fc1")->set("in_features", -2);
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec/fc1: in_features must be a positive integer");
  EXPECT_EQ(w.detail, "model/spec/fc1: in_features must be a positive integer; got int64 -2");

  g = mlp();
  g.find_group("relu1")->set("type", "lstm");
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec/relu1: layer type \"lstm\" has no ONNX operator here");
  EXPECT_EQ(w.detail, "model/spec/relu1: unknown layer type \"lstm\" (known: linear, conv2d, maxpool2d, relu, flatten, softmax)");

  Group c;
  c.set("type", "conv2d").set("in_channels", 1).set("out_channels", 2).set("kernel_size", 3).set("padding", -1);
  w = refusal([&] { parse_layer(c, "conv"); });
  EXPECT_EQ(w.reason, "model/spec/conv: padding must be at least 0");
  EXPECT_EQ(w.detail, "model/spec/conv: padding must be a non-negative integer or a pair [h, w] of them; got int64 -1");

  g = mlp();
  g.find_group("fc2")->set("in_features", 9);
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec/fc2: expects input [N, 9], gets [1, 8]");
  EXPECT_EQ(w.detail, "model/spec/fc2: expects input of shape [N, 9] with N > 0, got [1, 8]");

  const LayerSpec pool = parse_layer(Group().set("type", "maxpool2d").set("kernel_size", 5), "pool");
  w = refusal([&] { output_shape(pool, {1, 1, 4, 4}); });
  EXPECT_EQ(w.reason, "model/spec/pool: input [1, 1, 4, 4] is smaller than the kernel");
  EXPECT_EQ(w.detail, w.reason);

  const LayerSpec softmax = parse_layer(Group().set("type", "softmax").set("dim", 2), "softmax");
  w = refusal([&] { output_shape(softmax, {1, 3}); });
  EXPECT_EQ(w.reason, "model/spec/softmax: dim 2 is not a non-batch dimension of [1, 3]");
  EXPECT_EQ(w.detail, "model/spec/softmax: dim 2 must name a non-batch dimension of input [1, 3]");
}

TEST(ModelSpec, SizesPastInt64AreRefusedNotOverflowed) {
  constexpr int64_t big = int64_t{1} << 62;
  Group g;
  g.set("type", "sequential");
  g.set("input_shape", std::vector<int64_t>{1, big, big});
  g.set("layers", std::vector<std::string>{"conv"});
  g.add_group("conv").set("type", "conv2d").set("in_channels", 1).set("out_channels", 1).set("kernel_size", 1).set("padding", big);
  Words w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec/conv: input [1, 1, " + std::to_string(big) + ", " + std::to_string(big) + "] padded by [" +
                          std::to_string(big) + ", " + std::to_string(big) + "] has sizes past int64");

  g.set("input_shape", std::vector<int64_t>{big, 4});
  g.set("layers", std::vector<std::string>{"flatten"});
  g.add_group("flatten").set("type", "flatten");
  w = parse_refusal(g);
  EXPECT_EQ(w.reason, "model/spec/flatten: input [1, " + std::to_string(big) + ", 4] has more features than int64 counts");

  // PyTorch's padding rule, without computing 2 * padding.
  EXPECT_TRUE(padding_fits({3, 3}, {1, 1}));
  EXPECT_FALSE(padding_fits({3, 3}, {2, 1}));
  EXPECT_FALSE(padding_fits({1, 1}, {big, big}));
}

}  // namespace
}  // namespace ckpt::model_spec
