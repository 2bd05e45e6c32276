// Ed25519 signatures over a checkpoint's canonical manifest (docs/reliability.md, "Signatures").
//
// The per-tensor hashes of meta/integrity are XXH3-64: fast, and good against accidents, but
// anyone can forge data with a chosen XXH3 hash. So what is signed is the canonical manifest
// (docs/schema.md) with each tensor's BLAKE2b-256 in place of its XXH3: everything the integrity
// manifest covers, with hashes an attacker cannot collide. The signature is stored in
// meta/signature, which the manifest leaves out, as it leaves out meta/integrity.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/io.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt {

inline constexpr const char* kSignaturePath = "meta/signature";
inline constexpr const char* kSignatureAlgorithm = "ed25519";
inline constexpr const char* kSignatureDigest = "blake2b-256";

class PublicKey {
 public:
  static constexpr size_t kSize = 32;
  explicit PublicKey(const std::array<unsigned char, kSize>& bytes) : bytes_(bytes) {}
  const std::array<unsigned char, kSize>& bytes() const { return bytes_; }
  // 32 hex digits of BLAKE2b-128 over the key: names the key in meta/signature and in output.
  std::string id() const;

 private:
  std::array<unsigned char, kSize> bytes_;
};

// The 64-byte Ed25519 secret key (seed and public key, as libsodium keeps it). Wiped on
// destruction.
class SecretKey {
 public:
  static constexpr size_t kSize = 64;
  explicit SecretKey(const std::array<unsigned char, kSize>& bytes) : bytes_(bytes) {}
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&&) = delete;
  ~SecretKey();
  const std::array<unsigned char, kSize>& bytes() const { return bytes_; }
  PublicKey public_key() const;

 private:
  std::array<unsigned char, kSize> bytes_;
};

// A fresh key pair from the operating system's randomness.
std::pair<SecretKey, PublicKey> generate_key_pair();

// Key files are two text lines: a header naming the kind of key and its version, then the key
// in standard base64. The secret key file is created with mode 0600 and refused on reading when
// anyone but its owner may read it. Writing refuses to replace a file unless `overwrite`.
void write_secret_key(const SecretKey& key, const fs::path& path, bool overwrite = false);
void write_public_key(const PublicKey& key, const fs::path& path, bool overwrite = false);
SecretKey read_secret_key(const fs::path& path);
PublicKey read_public_key(const fs::path& path);
// The same from text in memory; `source` names it in errors (FormatError).
SecretKey parse_secret_key(std::string_view text, const std::string& source);
PublicKey parse_public_key(std::string_view text, const std::string& source);

// Exactly the bytes that are signed: a header line and the canonical manifest of `tree` with
// `digests` (tensor path -> BLAKE2b-256 hex) as the tensors' hashes.
std::string signed_message(const Document& tree, const std::vector<std::pair<std::string, std::string>>& digests);
std::string blake2b_hex(std::span<const std::byte> bytes);

struct SignOptions {
  std::string format = "auto";   // the file's format; it is rewritten in the same one
  Options write_options{};       // passed to the writer when the file is rewritten
  bool fsync = true;
  const Registry* registry = nullptr;
};

struct SignReport {
  std::string format;
  std::string key_id;
  std::optional<std::string> replaced_key_id;  // the signature this one replaced
  size_t tensors = 0;
  uint64_t bytes = 0;
};

// Checks the file's recorded hashes, signs it and rewrites it atomically through its own
// format. Before the new file replaces the old one it is read back and its signature checked,
// so a format that cannot keep the signed content exactly leaves the file untouched
// (IntegrityError). A format that cannot hold meta/signature at all is an UnsupportedError.
SignReport sign_file(const fs::path& path, const SecretKey& key, const SignOptions& options = {});

struct SignatureReport {
  bool present = false;  // the file has meta/signature
  std::string key_id;    // as recorded there
  size_t tensors = 0;
  uint64_t bytes = 0;
  std::vector<std::string> problems;  // empty: the signature is valid for the given key
  bool ok() const { return present && problems.empty(); }
};

// Streams every signed tensor of an open file through BLAKE2b and checks the signature.
SignatureReport verify_signature(FormatReader& reader, const PublicKey& key);
// The key id meta/signature names, unchecked; nullopt when the file is not signed.
std::optional<std::string> recorded_signer(const Document& tree);

}  // namespace ckpt
