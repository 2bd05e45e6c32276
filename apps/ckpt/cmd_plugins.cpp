#include "commands.hpp"
#include "plugin_check.hpp"
#include "text.hpp"

#include <ckpt/registry.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_plugins(CLI::App& app) {
  auto* cmd = app.add_subcommand("plugins", "List format plugins, where each came from, and what was skipped");
  static bool names = false;
  cmd->add_flag("--names", names, "only the names of formats that both read and write, one per line (for scripts)");
  static std::string check;
  cmd->add_option("--check", check,
                  "load one plugin library (ckpt_<name>.so) alone, run the conformance kit's quick checks on it and "
                  "print what to fix (exit 1 when anything needs fixing)");
  return [] {
    if (!check.empty()) return check_plugin(check, std::cout) == 0 ? kOk : kFinding;
    const Registry& reg = Registry::global();
    if (names) {
      for (const auto& f : reg.formats())
        if (f.info().can(CKPT_CAP_READ) && f.info().can(CKPT_CAP_WRITE)) std::cout << f.name() << "\n";
      return kOk;
    }
    std::printf("%-12s %-8s %-22s %-9s %s\n", "FORMAT", "VERSION", "EXTENSIONS", "FROM", "CAPABILITIES");
    for (const auto& p : reg.plugins())
      for (const auto& f : p->formats)
        std::printf("%-12s %-8s %-22s %-9s %s\n", f.name.c_str(), p->version.c_str(), join(f.extensions, ",").c_str(),
                    p->origin.c_str(), join(capability_names(f.capabilities), ",").c_str());
    if (reg.plugins().empty())
      std::cout << "(no plugins found; searched CKPT_PLUGIN_PATH, the install folder and the build tree)\n";
    for (const auto& p : reg.plugins()) std::cout << "plugin " << p->name << ": " << p->library.string() << "\n";
    for (const auto& s : reg.skipped()) std::cout << "skipped " << terminal_safe(s.path.string()) << ": " << terminal_safe(s.reason, true) << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
