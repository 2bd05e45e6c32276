#include "loaded_plugin.hpp"

#include "status.hpp"

#include <ckpt/errors.hpp>

#include <boost/dll/shared_library.hpp>

#include <mutex>
#include <system_error>

namespace ckpt {

std::shared_ptr<LoadedPlugin> LoadedPlugin::open(const fs::path& library) {
  std::shared_ptr<LoadedPlugin> p(new LoadedPlugin());
  p->path_ = library;
  try {
    p->lib_.load(library, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginError("cannot load plugin '" + library.string() + "': " + e.what());
  }
  if (!p->lib_.has(CKPT_PLUGIN_ENTRY_SYMBOL))
    throw PluginError("plugin '" + library.string() + "' does not export " +
                      CKPT_PLUGIN_ENTRY_SYMBOL + " (is it built against ckpt's ABI v1?)");
  auto& entry =
      p->lib_.get<const ckpt_plugin_descriptor*(const ckpt_host_api*)>(CKPT_PLUGIN_ENTRY_SYMBOL);
  const ckpt_plugin_descriptor* d = nullptr;
  try {
    d = entry(detail::host_api());
  } catch (const std::exception& e) {
    // The ABI forbids it, but a plugin written in C++ can still let an exception out.
    throw PluginError("plugin '" + library.string() + "' threw from " + CKPT_PLUGIN_ENTRY_SYMBOL + ": " + e.what());
  } catch (...) {
    throw PluginError("plugin '" + library.string() + "' threw from " + CKPT_PLUGIN_ENTRY_SYMBOL);
  }
  if (!d) throw PluginError("plugin '" + library.string() + "' refused this host (ABI v1)");
  if (d->struct_size < offsetof(ckpt_plugin_descriptor, n_formats) + sizeof(uint32_t))
    throw PluginError("plugin '" + library.string() + "': descriptor is too small (" +
                      std::to_string(d->struct_size) + " bytes)");
  if (d->abi_version != CKPT_ABI_VERSION)
    throw PluginError("plugin '" + library.string() + "' was built for ABI version " +
                      std::to_string(d->abi_version) + ", this host speaks " +
                      std::to_string(CKPT_ABI_VERSION));
  if (!d->name || !d->version || (d->n_formats > 0 && !d->formats))
    throw PluginError("plugin '" + library.string() + "': descriptor lacks name, version or formats");
  p->desc_ = d;
  for (size_t i = 0; i < p->format_count(); ++i) {
    const ckpt_format& f = p->format(i);
    if (f.struct_size < offsetof(ckpt_format, open_reader) + sizeof(f.open_reader) || !f.name ||
        !f.identify)
      throw PluginError("plugin '" + library.string() + "': format #" + std::to_string(i) +
                        " is incomplete");
  }
  return p;
}

LoadedPlugin::~LoadedPlugin() = default;

const ckpt_format& LoadedPlugin::format(size_t i) const {
  auto base = reinterpret_cast<const char*>(desc_->formats);
  size_t stride = desc_->formats[0].struct_size;
  return *reinterpret_cast<const ckpt_format*>(base + i * stride);
}

const ckpt_format* LoadedPlugin::find(std::string_view name) const {
  for (size_t i = 0; i < format_count(); ++i)
    if (name == format(i).name) return &format(i);
  return nullptr;
}

PluginInfo LoadedPlugin::describe() const {
  PluginInfo info;
  info.name = desc_->name;
  info.version = desc_->version;
  info.abi_version = desc_->abi_version;
  info.library = path_;
  for (size_t i = 0; i < format_count(); ++i) {
    const ckpt_format& f = format(i);
    FormatInfo fi;
    fi.name = f.name;
    fi.long_name = f.long_name ? f.long_name : f.name;
    for (auto e = f.extensions; e && *e; ++e) fi.extensions.push_back(*e);
    for (uint32_t m = 0; m < f.n_magic && f.magic; ++m)
      fi.magic.push_back({f.magic[m].offset,
                          std::string(reinterpret_cast<const char*>(f.magic[m].bytes), f.magic[m].size)});
    fi.capabilities = f.capabilities;
    fi.dtypes = f.dtypes;
    info.formats.push_back(std::move(fi));
  }
  return info;
}

}  // namespace ckpt
