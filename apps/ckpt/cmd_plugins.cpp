#include "commands.hpp"

#include <ckpt/registry.hpp>

#include <iostream>

namespace ckpt::cli {

namespace {
std::string join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}
}  // namespace

Runner add_plugins(CLI::App& app) {
  auto* cmd = app.add_subcommand("plugins", "List format plugins, where each came from, and what was skipped");
  return [cmd] {
    (void)cmd;
    const Registry& reg = Registry::global();
    std::printf("%-10s %-8s %-28s %-22s %s\n", "FORMAT", "VERSION", "EXTENSIONS", "FROM", "CAPABILITIES");
    for (const auto& p : reg.plugins())
      for (const auto& f : p->formats)
        std::printf("%-10s %-8s %-28s %-22s %s\n", f.name.c_str(), p->version.c_str(),
                    join(f.extensions).c_str(), (p->origin + ":" + p->library.filename().string()).c_str(),
                    join(capability_names(f.capabilities)).c_str());
    if (reg.plugins().empty())
      std::cout << "(no plugins found; searched CKPT_PLUGIN_PATH, the install folder and the build tree)\n";
    for (const auto& p : reg.plugins()) std::cout << "# " << p->name << ": " << p->library.string() << "\n";
    for (const auto& s : reg.skipped()) std::cout << "skipped " << s.path.string() << ": " << s.reason << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
