#include "commands.hpp"
#include "text.hpp"

#include <ckpt/diff.hpp>

#include <iostream>

namespace ckpt::cli {

namespace {
const char* kind_name(DiffEntry::Kind k) {
  switch (k) {
    case DiffEntry::Kind::only_in_a: return "only in A";
    case DiffEntry::Kind::only_in_b: return "only in B";
    case DiffEntry::Kind::kind_changed: return "kind changed";
    case DiffEntry::Kind::dtype_changed: return "dtype changed";
    case DiffEntry::Kind::shape_changed: return "shape changed";
    case DiffEntry::Kind::values_differ: return "values differ";
    case DiffEntry::Kind::attribute_differs: return "attribute differs";
  }
  return "?";
}
}  // namespace

Runner add_diff(CLI::App& app) {
  auto* cmd = app.add_subcommand("diff", "Compare two files: keys only in one, dtype/shape changes, max abs difference per tensor");
  static std::string a, b;
  static double rtol = 0, atol = 0;
  static bool with_meta = false;
  cmd->add_option("A", a, "first file")->required();
  cmd->add_option("B", b, "second file")->required();
  cmd->add_option("--rtol", rtol, "relative tolerance (default 0: bit-exact)");
  cmd->add_option("--atol", atol, "absolute tolerance (default 0: bit-exact)");
  cmd->add_flag("--include-meta", with_meta, "also compare meta (creation time, hashes)");
  return [] {
    DiffOptions o;
    o.rtol = rtol;
    o.atol = atol;
    o.ignore_meta = !with_meta;
    DiffReport r = diff(a, b, o);
    for (const auto& e : r.entries) {
      std::cout << kind_name(e.kind) << ": " << terminal_safe(e.path) << ": " << terminal_safe(e.detail);
      if (e.kind == DiffEntry::Kind::values_differ) std::cout << ", max abs diff " << e.max_abs_diff;
      std::cout << "\n";
    }
    if (r.identical()) {
      std::cout << "identical (" << r.tensors_compared << " tensors, " << r.attributes_compared << " attributes)\n";
      return kOk;
    }
    std::cout << r.entries.size() << " differences\n";
    return kFinding;
  };
}

}  // namespace ckpt::cli
