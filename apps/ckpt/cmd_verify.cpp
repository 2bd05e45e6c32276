#include "commands.hpp"
#include "text.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/signature.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_verify(CLI::App& app) {
  auto* cmd = app.add_subcommand("verify", "Check a file's structure and every tensor against its recorded hashes");
  static std::string file, format = "auto", pubkey, signature;
  static std::vector<std::string> read_opts;
  static bool require_hashes = false;
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  cmd->add_option("--pubkey", pubkey, "also check the file's Ed25519 signature (FILE.sig) against this public key (KEY.pub)");
  cmd->add_option("--signature", signature, "the signature file to check (default: FILE.sig)");
  cmd->add_option("-r,--read-option", read_opts, "KEY=VALUE for the file's format")->allow_extra_args(false);
  cmd->add_flag("--require-hashes", require_hashes,
                "fail (exit 1) on a file that records no hashes of its tensors, instead of checking its structure only");
  return [] {
    VerifyReport r;
    std::optional<SignatureReport> sig;
    std::optional<std::string> signer, legacy;
    // Read first, so a bad key file is a usage error rather than a finding about FILE.
    std::optional<PublicKey> key;
    if (!pubkey.empty()) key = read_public_key(pubkey);
    try {
      LoadOptions lo;
      lo.format = format;
      lo.format_options = parse_options(read_opts);
      auto reader = open(file, lo);
      r = verify(*reader);
      signer = recorded_signer(file, signature);
      legacy = legacy_signer(reader->tree());
      if (key) sig = verify_signature(file, *reader, *key, signature);
    } catch (const UsageError&) {
      throw;
    } catch (const IoError&) {
      throw;
    } catch (const Error& e) {
      // A file that cannot be read is a finding of verify, not a usage error: damage may show
      // as any kind of error from the format (a format error, an unsupported dtype, a limit).
      std::cout << "FAILED " << file << ": " << terminal_safe(e.what(), true) << "\n";
      return kFinding;
    }
    for (const auto& p : r.problems) std::cout << "FAILED " << file << ": " << terminal_safe(p, true) << "\n";
    if (sig)
      for (const auto& p : sig->problems) std::cout << "FAILED " << file << ": signature: " << terminal_safe(p, true) << "\n";
    if (!r.ok() || (sig && !sig->ok())) return kFinding;
    // Files other tools wrote (torch.save, h5py, torch.onnx.export) record no hashes: their
    // structure is all there is to check, and that is not a failure unless asked for.
    if (!r.has_integrity && require_hashes) {
      std::cout << "FAILED " << file << ": no hashes recorded for its " << r.tensors_checked
                << " tensors (meta/integrity), and --require-hashes asks for them\n";
      return kFinding;
    }
    if (!r.has_integrity)
      std::cout << "OK " << file << ": structure readable, " << r.tensors_checked
                << " tensors; no hashes recorded, so data could not be checked (--require-hashes makes that a failure)\n";
    else
      std::cout << "OK " << file << ": " << r.tensors_checked << " tensors, " << r.bytes_checked
                << " bytes match their recorded hashes\n";
    // h5py or ONNX Runtime read these from other files: an OK above says nothing of them.
    for (const auto& ref : r.not_covered)
      std::cout << "NOTE " << file << ": not covered by its hashes or a signature: a reference to another file, "
                << terminal_safe(ref, true) << "\n";
    if (sig)
      std::cout << "OK " << file << ": signature by key " << sig->key_id << " is valid over the file's "
                << sig->file_bytes << " bytes and the " << sig->tensors << " tensors ckpt reads from it\n";
    else if (signer)
      std::cout << "NOTE " << file << ": signed by key " << *signer << "; pass --pubkey to check the signature\n";
    if (legacy)
      std::cout << "NOTE " << file << ": holds an in-file meta/signature (key " << *legacy
                << ") as ckpt 0.1 wrote them; it does not bind the file's bytes and is never accepted\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
