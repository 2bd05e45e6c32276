// The ready-made specs. Layer names are the attribute names of the PyTorch modules they mirror,
// so state dicts move between the two unchanged.
#include <ckpt/errors.hpp>
#include <ckpt/train/model.hpp>

namespace ckpt::train {

namespace {
Group sequential(std::vector<int64_t> input_shape) {
  Group g;
  g.set("type", "sequential");
  g.set("input_shape", std::move(input_shape));
  g.set("layers", std::vector<std::string>{});
  return g;
}

Group& add(Group& spec, const std::string& name, const char* type) {
  auto names = std::get<std::vector<std::string>>(*spec.attribute("layers"));
  names.push_back(name);
  spec.set("layers", std::move(names));
  Group& layer = spec.add_group(name);
  layer.set("type", type);
  return layer;
}

void linear(Group& spec, const std::string& name, int64_t in, int64_t out) {
  Group& l = add(spec, name, "linear");
  l.set("in_features", in);
  l.set("out_features", out);
}

void require_positive(int64_t v, const char* what) {
  if (v <= 0) throw UsageError(std::string(what) + " must be positive, got " + std::to_string(v));
}
}  // namespace

Group Model::linear_regression_spec(int64_t in_features, int64_t out_features) {
  require_positive(in_features, "linear_regression in_features");
  require_positive(out_features, "linear_regression out_features");
  Group g = sequential({in_features});
  linear(g, "linear", in_features, out_features);
  return g;
}

Group Model::logistic_regression_spec(int64_t in_features, int64_t classes) {
  require_positive(in_features, "logistic_regression in_features");
  require_positive(classes, "logistic_regression classes");
  Group g = sequential({in_features});
  linear(g, "linear", in_features, classes);
  return g;
}

Group Model::mlp_spec(int64_t in_features, const std::vector<int64_t>& hidden, int64_t classes) {
  require_positive(in_features, "mlp in_features");
  require_positive(classes, "mlp classes");
  Group g = sequential({in_features});
  int64_t in = in_features;
  for (size_t i = 0; i < hidden.size(); ++i) {
    require_positive(hidden[i], "mlp hidden size");
    std::string n = std::to_string(i + 1);
    linear(g, "fc" + n, in, hidden[i]);
    add(g, "relu" + n, "relu");
    in = hidden[i];
  }
  linear(g, "fc" + std::to_string(hidden.size() + 1), in, classes);
  return g;
}

Group Model::convnet_spec() {
  Group g = sequential({1, 28, 28});
  auto conv = [&](const char* name, int64_t in, int64_t out) {
    Group& c = add(g, name, "conv2d");
    c.set("in_channels", in);
    c.set("out_channels", out);
    c.set("kernel_size", 5);
  };
  auto pool = [&](const char* name) { add(g, name, "maxpool2d").set("kernel_size", 2); };
  conv("conv1", 1, 10);
  pool("pool1");
  add(g, "relu1", "relu");
  conv("conv2", 10, 20);
  pool("pool2");
  add(g, "relu2", "relu");
  add(g, "flatten", "flatten");
  linear(g, "fc1", 320, 50);
  add(g, "relu3", "relu");
  linear(g, "fc2", 50, 10);
  return g;
}

}  // namespace ckpt::train
