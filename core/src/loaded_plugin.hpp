// One plugin library in memory. Shared by every Format, writer and reader made from it, so the
// library is unloaded only when the last of them is gone.
#pragma once

#include <ckpt/plugin_abi.h>
#include <ckpt/registry.hpp>

#include <boost/dll/shared_library.hpp>

#include <memory>

namespace ckpt {

class LoadedPlugin {
 public:
  // Loads `library`, calls its entry point and checks the descriptor. Throws PluginError.
  static std::shared_ptr<LoadedPlugin> open(const fs::path& library);
  ~LoadedPlugin();

  const ckpt_plugin_descriptor& descriptor() const { return *desc_; }
  size_t format_count() const { return desc_->n_formats; }
  // Formats are laid out with the plugin's own struct size as the stride, so a plugin built
  // against a newer, larger ckpt_format still indexes correctly.
  const ckpt_format& format(size_t i) const;
  const ckpt_format* find(std::string_view name) const;
  const fs::path& path() const { return path_; }

  // The descriptor as the registry's description.
  PluginInfo describe() const;

 private:
  LoadedPlugin() = default;
  boost::dll::shared_library lib_;
  const ckpt_plugin_descriptor* desc_ = nullptr;
  fs::path path_;
};

}  // namespace ckpt
