#include "commands.hpp"

#include <ckpt/signature.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_sign(CLI::App& app) {
  auto* cmd = app.add_subcommand("sign", "Sign a checkpoint with an Ed25519 key (rewrites it atomically in its own format)");
  static std::string file, key, format = "auto";
  static std::vector<std::string> write_opts;
  cmd->add_option("FILE", file, "checkpoint file")->required();
  cmd->add_option("--key", key, "secret key file made by `ckpt keygen`")->required();
  cmd->add_option("--format", format, "the file's format (default: detect)");
  cmd->add_option("-w,--write-option", write_opts, "KEY=VALUE for the format's writer")->allow_extra_args(false);
  return [] {
    SecretKey secret = read_secret_key(key);
    SignOptions o;
    o.format = format;
    o.write_options = parse_options(write_opts);
    SignReport r = sign_file(file, secret, o);
    if (r.replaced_key_id)
      std::cout << "replaced the signature by key " << *r.replaced_key_id << "\n";
    std::cout << "signed " << file << " (" << r.format << ") with key " << r.key_id << ": " << r.tensors
              << " tensors, " << r.bytes << " bytes\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
