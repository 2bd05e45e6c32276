#include "commands.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/signature.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_verify(CLI::App& app) {
  auto* cmd = app.add_subcommand("verify", "Check a file's structure and every tensor against its recorded hashes");
  static std::string file, format = "auto", pubkey;
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  cmd->add_option("--pubkey", pubkey, "also check the file's Ed25519 signature against this public key (KEY.pub)");
  return [] {
    VerifyReport r;
    std::optional<SignatureReport> sig;
    std::optional<std::string> signer;
    // Read first, so a bad key file is a usage error rather than a finding about FILE.
    std::optional<PublicKey> key;
    if (!pubkey.empty()) key = read_public_key(pubkey);
    try {
      LoadOptions lo;
      lo.format = format;
      auto reader = open(file, lo);
      r = verify(*reader);
      signer = recorded_signer(reader->tree());
      if (key) sig = verify_signature(*reader, *key);
    } catch (const UsageError&) {
      throw;
    } catch (const IoError&) {
      throw;
    } catch (const Error& e) {
      // A file that cannot be read is a finding of verify, not a usage error: damage may show
      // as any kind of error from the format (a format error, an unsupported dtype, a limit).
      std::cout << "FAILED " << file << ": " << e.what() << "\n";
      return kFinding;
    }
    for (const auto& p : r.problems) std::cout << "FAILED " << file << ": " << p << "\n";
    if (sig)
      for (const auto& p : sig->problems) std::cout << "FAILED " << file << ": signature: " << p << "\n";
    if (!r.ok() || (sig && !sig->ok())) return kFinding;
    if (!r.has_integrity)
      std::cout << "OK " << file << ": structure readable, " << r.tensors_checked
                << " tensors; no hashes recorded (not written by ckpt), so data could not be checked\n";
    else
      std::cout << "OK " << file << ": " << r.tensors_checked << " tensors, " << r.bytes_checked
                << " bytes match their recorded hashes\n";
    if (sig)
      std::cout << "OK " << file << ": signature by key " << sig->key_id << " is valid over " << sig->tensors
                << " tensors and all metadata\n";
    else if (signer)
      std::cout << "NOTE " << file << ": signed by key " << *signer << "; pass --pubkey to check the signature\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
