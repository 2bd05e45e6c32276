// What a signature states and the exact bytes signed: the file's BLAKE2b-256 and size, and the
// v2 manifest of what ckpt reads from it with each tensor's BLAKE2b-256.
#include "small_file.hpp"

#include <ckpt/format_io.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>

#include <sodium.h>

namespace ckpt {

namespace {

constexpr const char* kMessageHeader = "ckpt-signature-2\n";

// Length-prefixed, so that no string can end one field and start the next.
std::string lp(const std::string& s) { return std::to_string(s.size()) + ":" + s; }

}  // namespace

std::string signed_message(const SignedStatement& s) {
  std::string m = kMessageHeader;
  m += "key_id " + lp(s.key_id) + "\n";
  m += "format " + lp(s.format) + "\n";
  m += "file " + std::to_string(s.file_size) + " " + lp(s.file_digest) + "\n";
  m += "manifest " + lp(s.manifest_digest) + "\n";
  m += "tensors " + std::to_string(s.tensors) + " " + std::to_string(s.tensor_bytes) + "\n";
  return m;
}

std::string blake2b_hex(std::span<const std::byte> bytes) {
  detail::ensure_sodium();
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr, 0);
  return detail::to_hex(h, sizeof h);
}

std::string file_blake2b(const fs::path& path, uint64_t* size) {
  detail::ensure_sodium();
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  uint64_t total = 0;
  detail::read_chunks(path, "a checkpoint", [&](std::span<const std::byte> b) {
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(b.data()), b.size());
    total += b.size();
    return true;
  });
  unsigned char h[32];
  crypto_generichash_final(&st, h, sizeof h);
  if (size) *size = total;
  return detail::to_hex(h, sizeof h);
}

SignedStatement describe_for_signing(const fs::path& path, FormatReader& reader) {
  SignedStatement s;
  s.format = reader.format().name;
  s.file_digest = file_blake2b(path, &s.file_size);
  const Document& tree = reader.tree();
  std::vector<std::pair<std::string, std::string>> digests;
  reader.for_each_tensor_bytes([&](const std::string& p, const Tensor&, std::span<const std::byte> bytes) {
    digests.emplace_back(p, blake2b_hex(bytes));
    s.tensors++;
    s.tensor_bytes += bytes.size();
  });
  const std::string manifest = canonical_manifest(tree, digests, ManifestEncoding::v2);
  s.manifest_digest = blake2b_hex(std::as_bytes(std::span(manifest.data(), manifest.size())));
  return s;
}

}  // namespace ckpt
