#include "commands.hpp"

#include <ckpt/signature.hpp>

#include <iostream>

namespace ckpt::cli {

Runner add_keygen(CLI::App& app) {
  auto* cmd = app.add_subcommand("keygen", "Make an Ed25519 key pair for `ckpt sign`: KEY (secret, mode 0600) and KEY.pub");
  static std::string key;
  static bool force = false;
  cmd->add_option("KEY", key, "where to write the secret key; the public key goes to KEY.pub")->required();
  cmd->add_flag("--force", force, "replace existing key files");
  return [] {
    auto [secret, pub] = generate_key_pair();
    const std::string pub_path = key + ".pub";
    // The public half first: a failure then never leaves a secret key without its public key.
    write_public_key(pub, pub_path, force);
    write_secret_key(secret, key, force);
    std::cout << "wrote " << key << " (secret) and " << pub_path << " (public); key id " << pub.id() << "\n";
    return kOk;
  };
}

}  // namespace ckpt::cli
