#include "commands.hpp"
#include "text.hpp"

#include <ckpt/io.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_gc(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "gc", "Remove temporary files left by interrupted saves; a save still in progress keeps its own");
  static std::string dir;
  static bool dry_run = false, recursive = false;
  static double min_age = -1;
  cmd->add_option("DIR", dir, "checkpoint folder")->required();
  cmd->add_flag("-n,--dry-run", dry_run, "only say what would be removed");
  cmd->add_flag("-r,--recursive", recursive, "also look in sub-folders");
  cmd->add_option("--min-age", min_age,
                  "remove only temporaries at least this many seconds old; on file systems without "
                  "locks, the only way to tell a dead writer's file")
      ->check(CLI::NonNegativeNumber);
  return [] {
    GcOptions o;
    o.dry_run = dry_run;
    o.recursive = recursive;
    if (min_age >= 0) o.min_age_seconds = min_age;
    size_t removed = 0, kept = 0;
    uint64_t bytes = 0;
    for (const auto& t : remove_stale_temporaries(dir, o)) {
      if (t.removed || (dry_run && t.state == TemporaryFile::State::stale)) {
        std::cout << (dry_run ? "would remove " : "removed ") << terminal_safe(t.path.string()) << " (" << t.bytes << " bytes)\n";
        ++removed;
        bytes += t.bytes;
      } else {
        std::cout << "kept " << terminal_safe(t.path.string()) << ": " << terminal_safe(t.note) << "\n";
        ++kept;
      }
    }
    std::cout << "gc " << dir << ": " << (dry_run ? "would remove " : "removed ") << removed << " temporar"
              << (removed == 1 ? "y" : "ies") << " (" << bytes << " bytes), kept " << kept << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
