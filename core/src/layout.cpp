#include "layouts/builtin.hpp"

#include <ckpt/errors.hpp>

#include <mutex>

namespace ckpt {

namespace {

struct Adapters {
  std::mutex mutex;
  std::vector<std::shared_ptr<const LayoutAdapter>> list{layouts::onnx_sequential(), layouts::keras_legacy_h5(),
                                                     layouts::torch_checkpoint()};
};

Adapters& adapters() {
  static Adapters a;
  return a;
}

}  // namespace

std::vector<std::shared_ptr<const LayoutAdapter>> layout_adapters() {
  Adapters& a = adapters();
  std::lock_guard lock(a.mutex);
  return a.list;
}

void register_layout(std::shared_ptr<const LayoutAdapter> adapter) {
  if (!adapter) throw UsageError("register_layout: no adapter");
  Adapters& a = adapters();
  std::lock_guard lock(a.mutex);
  for (const auto& known : a.list)
    if (known->name() == adapter->name())
      throw UsageError("a layout named '" + std::string(adapter->name()) + "' is already registered");
  a.list.push_back(std::move(adapter));
}

}  // namespace ckpt
