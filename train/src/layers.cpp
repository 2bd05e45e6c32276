#include "layers.hpp"

#include <ckpt/errors.hpp>

namespace ckpt::train {

namespace detail {
std::unique_ptr<Layer> make_layer(const LayerSpec& spec, Engine& engine) {
  using model_spec::LayerType;
  switch (spec.type) {
    case LayerType::linear: return make_linear(spec, engine);
    case LayerType::conv2d: return make_conv2d(spec, engine);
    case LayerType::maxpool2d: return make_maxpool2d(spec, engine);
    case LayerType::relu: return make_relu(spec, engine);
    case LayerType::flatten: return make_flatten(spec, engine);
    case LayerType::softmax: return make_softmax(spec, engine);
  }
  throw UsageError("model/spec/" + spec.name + ": no layer of type number " + std::to_string(static_cast<int>(spec.type)));
}
}  // namespace detail

std::unique_ptr<Layer> make_layer(const Group& spec, const std::string& name, Engine& engine) {
  return detail::make_layer(model_spec::parse_layer(spec, name), engine);
}

}  // namespace ckpt::train
