// `ckpt plugins --check LIBRARY`: what a plugin author must fix before shipping a plugin.
#pragma once

#include <filesystem>
#include <ostream>

namespace ckpt::cli {

// Checks the library's file name and manifest, loads it alone (not through the search path),
// compares it with the plugins already found, and runs the conformance kit's quick mode on it
// in a child process (ckpt-conformance beside this program), so that a plugin that crashes is
// reported rather than taking ckpt down. Prints one line per check; returns the number of
// problems found. Throws UsageError when there is no library to check or no kit to run.
int check_plugin(const std::filesystem::path& library, std::ostream& out);

}  // namespace ckpt::cli
