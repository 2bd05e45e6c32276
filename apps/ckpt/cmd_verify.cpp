#include "commands.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_verify(CLI::App& app) {
  auto* cmd = app.add_subcommand("verify", "Check a file's structure and every tensor against its recorded hashes");
  static std::string file, format = "auto";
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  return [] {
    VerifyReport r;
    try {
      LoadOptions lo;
      lo.format = format;
      auto reader = open(file, lo);
      r = verify(*reader);
    } catch (const FormatError& e) {
      // A file that cannot be read is a finding of verify, not a usage error.
      std::cout << "FAILED " << file << ": " << e.what() << "\n";
      return kFinding;
    } catch (const IntegrityError& e) {
      std::cout << "FAILED " << file << ": " << e.what() << "\n";
      return kFinding;
    }
    for (const auto& p : r.problems) std::cout << "FAILED " << file << ": " << p << "\n";
    if (!r.ok()) return kFinding;
    if (!r.has_integrity)
      std::cout << "OK " << file << ": structure readable, " << r.tensors_checked
                << " tensors; no hashes recorded (not written by ckpt), so data could not be checked\n";
    else
      std::cout << "OK " << file << ": " << r.tensors_checked << " tensors, " << r.bytes_checked
                << " bytes match their recorded hashes\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
