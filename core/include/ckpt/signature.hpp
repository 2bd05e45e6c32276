// Detached Ed25519 signatures of checkpoint files (docs/reliability.md, "Signatures").
//
// A signature is a small file beside the checkpoint, FILE.sig, as OpenSSF model signing keeps
// its own beside a model: the checkpoint is never rewritten to be signed, so any file can be
// signed exactly as it is on disk. The signed message binds
//  - the file's exact bytes: its size and BLAKE2b-256 over all of them, so that nothing a
//    consumer of the format might read (an extra zip entry, an ONNX node, a __metadata__ key,
//    bytes appended) can change without breaking the signature;
//  - the format ckpt read it as, and the canonical manifest (v2, length-prefixed names) of
//    what ckpt reads from it with each tensor's BLAKE2b-256: this covers what lies outside the
//    file (ONNX external data) and ties the signature to one reading of the bytes.
// The XXH3 hashes of meta/integrity guard against accidents; only this guards against people.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/io.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/signer.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

inline constexpr const char* kSignatureAlgorithm = "ed25519";
inline constexpr const char* kSignatureDigest = "blake2b-256";
// What a signature file states, all of it signed.
struct SignedStatement {
  std::string key_id;
  std::string format;            // the format the file was read as
  uint64_t file_size = 0;
  std::string file_digest;       // BLAKE2b-256 hex of every byte of the file
  std::string manifest_digest;   // BLAKE2b-256 hex of the canonical manifest (v2)
  uint64_t tensors = 0;
  uint64_t tensor_bytes = 0;
};

// Exactly the bytes that are signed: a version line, then each field on its own line with
// every string length-prefixed.
std::string signed_message(const SignedStatement& s);
std::string blake2b_hex(std::span<const std::byte> bytes);
// BLAKE2b-256 hex of a whole regular file, and its size.
std::string file_blake2b(const fs::path& path, uint64_t* size);

// The statement for the file behind `reader` (at `path`), as it is now: the file's digest and
// the manifest of what the reader lists, every tensor hashed.
SignedStatement describe_for_signing(const fs::path& path, FormatReader& reader);

struct SignOptions {
  std::string format = "auto";  // the file's format
  fs::path signature{};         // where to write it; empty: FILE.sig
  bool fsync = true;
  const Registry* registry = nullptr;
};

struct SignReport {
  std::string format;
  std::string key_id;
  fs::path signature;
  std::optional<std::string> replaced_key_id;  // the signature this one replaced
  size_t tensors = 0;
  uint64_t bytes = 0;       // tensor bytes
  uint64_t file_bytes = 0;  // the file's size
};

// Checks the file's recorded hashes (a damaged file is not signed: IntegrityError), then writes
// its signature atomically. The checkpoint itself is not touched.
SignReport sign_file(const fs::path& path, const SecretKey& key, const SignOptions& options = {});

struct SignatureReport {
  bool present = false;  // a signature file was found
  std::string key_id;    // as it states
  fs::path signature;
  size_t tensors = 0;
  uint64_t bytes = 0;
  uint64_t file_bytes = 0;
  std::vector<std::string> problems;  // empty: the signature is valid for the given key
  bool ok() const { return present && problems.empty(); }
};

// Checks the signature of `path` (read through `reader`, which must be open on it) against
// `key`: the statement's signature, then the file's bytes, then the manifest of what the reader
// lists. `signature` empty: FILE.sig.
SignatureReport verify_signature(const fs::path& path, FormatReader& reader, const PublicKey& key,
                                 const fs::path& signature = {});

// default_signature_path, recorded_signer and legacy_signer: ckpt/signer.hpp.

}  // namespace ckpt
