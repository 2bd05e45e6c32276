#include "layers.hpp"

#include <ckpt/errors.hpp>

#include <string_view>

namespace ckpt::train {

std::unique_ptr<Layer> make_layer(const Group& spec, const std::string& name, Engine& engine) {
  using namespace detail;
  LayerAttrs a(spec, "model/spec/" + name);
  const Value* t = spec.attribute("type");
  const std::string* type = t ? std::get_if<std::string>(t) : nullptr;
  static constexpr std::string_view kTypes = "linear, conv2d, maxpool2d, relu, flatten, softmax";
  if (!type) a.fail("type must be a string naming a layer (" + std::string(kTypes) + ")");
  if (*type == "linear") return make_linear(a, engine);
  if (*type == "conv2d") return make_conv2d(a, engine);
  if (*type == "maxpool2d") return make_maxpool2d(a, engine);
  if (*type == "relu") return make_relu(a, engine);
  if (*type == "flatten") return make_flatten(a, engine);
  if (*type == "softmax") return make_softmax(a, engine);
  a.fail("unknown layer type \"" + *type + "\" (known: " + std::string(kTypes) + ")");
}

}  // namespace ckpt::train
