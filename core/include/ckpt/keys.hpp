// Ed25519 keys and their files (docs/reliability.md, "Signatures").
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

namespace ckpt {

namespace fs = std::filesystem;

class PublicKey {
 public:
  static constexpr size_t kSize = 32;
  explicit PublicKey(const std::array<unsigned char, kSize>& bytes) : bytes_(bytes) {}
  const std::array<unsigned char, kSize>& bytes() const { return bytes_; }
  // 32 hex digits of BLAKE2b-128 over the key: names the key in signatures and in output.
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
// Reading opens nothing but a regular file (a FIFO or a device named as a key is refused
// without blocking on it).
void write_secret_key(const SecretKey& key, const fs::path& path, bool overwrite = false);
void write_public_key(const PublicKey& key, const fs::path& path, bool overwrite = false);
SecretKey read_secret_key(const fs::path& path);
PublicKey read_public_key(const fs::path& path);
// The same from text in memory; `source` names it in errors (FormatError).
SecretKey parse_secret_key(std::string_view text, const std::string& source);
PublicKey parse_public_key(std::string_view text, const std::string& source);

namespace detail {
// libsodium, initialised once; throws when it cannot be.
void ensure_sodium();
std::string to_base64(const unsigned char* bin, size_t n);
// Decodes exactly `n` bytes from the whole of `text` into `out`; false on anything else.
bool from_base64(std::string_view text, unsigned char* out, size_t n);
std::string to_hex(const unsigned char* p, size_t n);
}  // namespace detail

}  // namespace ckpt
