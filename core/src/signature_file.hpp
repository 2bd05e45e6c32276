// The text of FILE.sig: a JSON object of the signed statement, what it was signed with, and
// the Ed25519 signature in base64. Read strictly, so that nothing unsigned rides along in it.
#pragma once

#include <ckpt/signature.hpp>

#include <array>
#include <string>

namespace ckpt::detail {

inline constexpr size_t kSignatureBytes = 64;  // crypto_sign_BYTES, checked where sodium.h is

struct SignatureFile {
  SignedStatement statement;
  std::array<unsigned char, kSignatureBytes> signature{};
};

// FormatError or UnsupportedError naming `path` on anything but exactly the fields this
// version writes, each of its type.
SignatureFile parse_signature_file(const fs::path& path);
std::string signature_file_text(const SignedStatement& s, const unsigned char* signature);

}  // namespace ckpt::detail
