#include "commands.hpp"

#include <ckpt/signature.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_sign(CLI::App& app) {
  auto* cmd = app.add_subcommand("sign", "Sign a checkpoint file as it is on disk with an Ed25519 key (writes FILE.sig beside it)");
  static std::string file, key, format = "auto", signature;
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--key", key, "secret key file made by `ckpt keygen`")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  cmd->add_option("--signature", signature, "where to write the signature (default: FILE.sig)");
  return [] {
    SecretKey secret = read_secret_key(key);
    SignOptions o;
    o.format = format;
    o.signature = signature;
    SignReport r = sign_file(file, secret, o);
    if (r.replaced_key_id) std::cout << "replaced the signature by key " << *r.replaced_key_id << "\n";
    std::cout << "signed " << file << " (" << r.format << ", " << r.file_bytes << " bytes) with key " << r.key_id
              << ": " << r.tensors << " tensors, " << r.bytes << " tensor bytes; signature in " << r.signature.string()
              << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
