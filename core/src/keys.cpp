#include "atomic_file.hpp"
#include "atomic_write.hpp"
#include "small_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/keys.hpp>

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <span>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt {

namespace {

using detail::ensure_sodium;

constexpr const char* kSecretHeader = "ckpt-ed25519-secret-key-v1";
constexpr const char* kPublicHeader = "ckpt-ed25519-public-key-v1";
// A key file is two short lines; anything much longer is not one.
constexpr size_t kMaxKeyFileBytes = 4096;

// The key line of a two-line key file, after checking the header; FormatError otherwise.
std::string_view key_line(std::string_view text, const char* header, const std::string& source) {
  if (text.size() > kMaxKeyFileBytes)
    throw FormatError(source + ": " + std::to_string(text.size()) + " bytes is too long for a key file");
  size_t nl = text.find('\n');
  std::string_view first = text.substr(0, nl);
  if (first != header) throw FormatError(source + ", line 1: expected \"" + std::string(header) + "\"");
  if (nl == std::string_view::npos) throw FormatError(source + ": the key line is missing");
  std::string_view rest = text.substr(nl + 1);
  size_t nl2 = rest.find('\n');
  std::string_view line = rest.substr(0, nl2);
  if (nl2 != std::string_view::npos && nl2 + 1 != rest.size())
    throw FormatError(source + ", line 3: unexpected text after the key");
  return line;
}

void write_key_file(const fs::path& path, const std::string& text, mode_t mode, bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::symlink_status(path, ec).type() != fs::file_type::not_found)
    throw UsageError("'" + path.string() + "' exists; not replacing a key file (use --force)");
  detail::write_text_atomically(path, text, true, static_cast<int>(mode));
}

}  // namespace

std::string PublicKey::id() const {
  ensure_sodium();
  unsigned char h[16];
  crypto_generichash(h, sizeof h, bytes_.data(), bytes_.size(), nullptr, 0);
  return detail::to_hex(h, sizeof h);
}

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) {
  sodium_memzero(other.bytes_.data(), other.bytes_.size());
}

SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

PublicKey SecretKey::public_key() const {
  std::array<unsigned char, PublicKey::kSize> pk{};
  crypto_sign_ed25519_sk_to_pk(pk.data(), bytes_.data());
  return PublicKey(pk);
}

std::pair<SecretKey, PublicKey> generate_key_pair() {
  ensure_sodium();
  std::array<unsigned char, SecretKey::kSize> sk{};
  std::array<unsigned char, PublicKey::kSize> pk{};
  crypto_sign_keypair(pk.data(), sk.data());
  SecretKey secret(sk);
  sodium_memzero(sk.data(), sk.size());
  return {std::move(secret), PublicKey(pk)};
}

void write_secret_key(const SecretKey& key, const fs::path& path, bool overwrite) {
  std::string text = std::string(kSecretHeader) + "\n" + detail::to_base64(key.bytes().data(), key.bytes().size()) + "\n";
  try {
    write_key_file(path, text, 0600, overwrite);
  } catch (...) {
    sodium_memzero(text.data(), text.size());
    throw;
  }
  sodium_memzero(text.data(), text.size());
}

void write_public_key(const PublicKey& key, const fs::path& path, bool overwrite) {
  write_key_file(path, std::string(kPublicHeader) + "\n" + detail::to_base64(key.bytes().data(), key.bytes().size()) + "\n",
                 0644, overwrite);
}

SecretKey parse_secret_key(std::string_view text, const std::string& source) {
  ensure_sodium();
  std::string_view line = key_line(text, kSecretHeader, source);
  std::array<unsigned char, SecretKey::kSize> sk{};
  if (!detail::from_base64(line, sk.data(), sk.size()))
    throw FormatError(source + ", line 2: expected " + std::to_string(SecretKey::kSize) + " bytes of base64");
  SecretKey key(sk);
  sodium_memzero(sk.data(), sk.size());
  // The second half is the public key; it must be the one the first half (the seed) makes.
  std::array<unsigned char, PublicKey::kSize> pk{};
  std::array<unsigned char, SecretKey::kSize> again{};
  crypto_sign_seed_keypair(pk.data(), again.data(), key.bytes().data());
  bool consistent = sodium_memcmp(again.data(), key.bytes().data(), again.size()) == 0;
  sodium_memzero(again.data(), again.size());
  if (!consistent) throw FormatError(source + ", line 2: the key's two halves do not belong together (damaged?)");
  return key;
}

PublicKey parse_public_key(std::string_view text, const std::string& source) {
  ensure_sodium();
  std::string_view line = key_line(text, kPublicHeader, source);
  std::array<unsigned char, PublicKey::kSize> pk{};
  if (!detail::from_base64(line, pk.data(), pk.size()))
    throw FormatError(source + ", line 2: expected " + std::to_string(PublicKey::kSize) + " bytes of base64");
  return PublicKey(pk);
}

SecretKey read_secret_key(const fs::path& path) {
  const int fd = detail::open_regular_file(path, "a secret key");
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  ::close(fd);
  if (rc != 0) throw IoError("cannot stat '" + path.string() + "': " + std::strerror(errno));
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw UsageError("'" + path.string() + "' has permissions " + mode +
                     "; a secret key must be readable by its owner only (chmod 600)");
  }
  std::string text = detail::read_small_file(path, kMaxKeyFileBytes, "key file");
  try {
    SecretKey key = parse_secret_key(text, "'" + path.string() + "'");
    sodium_memzero(text.data(), text.size());
    return key;
  } catch (...) {
    sodium_memzero(text.data(), text.size());
    throw;
  }
}

PublicKey read_public_key(const fs::path& path) {
  return parse_public_key(detail::read_small_file(path, kMaxKeyFileBytes, "key file"), "'" + path.string() + "'");
}

}  // namespace ckpt
