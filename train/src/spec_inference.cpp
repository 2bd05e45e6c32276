#include <ckpt/train/model.hpp>
#include <ckpt/train/spec_inference.hpp>

#include <string>
#include <vector>

namespace ckpt::train {

namespace {

const Tensor* find(const Group& state, const std::string& name) { return state.find_tensor(name); }

bool shaped(const Tensor* t, const Shape& s) { return t && t->shape() == s; }

// Every tensor of `state` is one of `names`: an inference that leaves a tensor out would
// build a model that then refuses the state dict anyway.
bool exactly(const Group& state, const std::vector<std::string>& names) {
  size_t n = 0;
  for (const auto& c : state.children()) {
    if (!c.is_tensor()) return false;
    bool known = false;
    for (const auto& m : names) known = known || c.name == m;
    if (!known) return false;
    ++n;
  }
  return n == names.size();
}

std::optional<Group> mlp(const Group& state) {
  std::vector<std::string> names;
  std::vector<int64_t> widths;
  for (int k = 1;; ++k) {
    const std::string p = "fc" + std::to_string(k);
    const Tensor* w = find(state, p + ".weight");
    if (!w) break;
    if (w->shape().size() != 2) return std::nullopt;
    if (widths.empty()) widths.push_back(w->shape()[1]);
    else if (w->shape()[1] != widths.back()) return std::nullopt;
    widths.push_back(w->shape()[0]);
    names.push_back(p + ".weight");
    if (const Tensor* b = find(state, p + ".bias")) {
      if (!shaped(b, {w->shape()[0]})) return std::nullopt;
      names.push_back(p + ".bias");
    }
  }
  if (widths.size() < 2 || !exactly(state, names)) return std::nullopt;
  // Model::mlp_spec gives every layer a bias, as nn.Linear does by default.
  if (names.size() != 2 * (widths.size() - 1)) return std::nullopt;
  std::vector<int64_t> hidden(widths.begin() + 1, widths.end() - 1);
  return Model::mlp_spec(widths.front(), hidden, widths.back());
}

std::optional<Group> convnet(const Group& state) {
  const Group spec = Model::convnet_spec();
  auto model = Model::from_spec(spec, 0);
  const Group mine = model->state_dict();
  std::vector<std::string> names;
  for (const auto& c : mine.children()) {
    if (!shaped(find(state, c.name), c.tensor().shape())) return std::nullopt;
    names.push_back(c.name);
  }
  if (!exactly(state, names)) return std::nullopt;
  return spec;
}

}  // namespace

std::optional<Group> infer_spec(const Group& state) {
  if (auto g = mlp(state)) return g;
  return convnet(state);
}

}  // namespace ckpt::train
