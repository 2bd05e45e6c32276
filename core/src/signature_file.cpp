#include "signature_file.hpp"

#include "small_file.hpp"

#include <ckpt/errors.hpp>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <iterator>
#include <set>

namespace ckpt::detail {

namespace {

using json = nlohmann::ordered_json;

static_assert(kSignatureBytes == crypto_sign_BYTES);

constexpr const char* kFileFormat = "ckpt-signature";
constexpr int64_t kFileVersion = 2;
// A signature file is a few hundred bytes.
constexpr size_t kMaxSignatureFileBytes = 64 << 10;

}  // namespace

SignatureFile parse_signature_file(const fs::path& path) {
  const std::string text = read_small_file(path, kMaxSignatureFileBytes, "signature file");
  const std::string where = "'" + path.string() + "'";
  // A field given twice (or spelled with escapes) would be read as the last by this parser and
  // as the first by others: refused, so that the statement has one reading.
  std::set<std::string> keys;
  bool duplicate = false;
  auto once = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second) duplicate = true;
    return true;
  };
  json j = text.find('\0') == std::string::npos ? json::parse(text, once, false) : json(json::value_t::discarded);
  if (duplicate) throw FormatError(where + ": a field appears twice");
  if (j.is_discarded() || !j.is_object()) throw FormatError(where + ": not a JSON object");
  static const char* kKeys[] = {"format", "version", "algorithm", "digest", "key_id", "checkpoint_format",
                                "file_size", "file_blake2b", "manifest_blake2b", "tensors", "tensor_bytes",
                                "signature"};
  for (const auto& [k, v] : j.items())
    if (std::find(std::begin(kKeys), std::end(kKeys), k) == std::end(kKeys))
      throw FormatError(where + ": unexpected field \"" + k + "\" (not covered by the signature)");
  auto str = [&](const char* k) -> std::string {
    if (!j.contains(k) || !j[k].is_string()) throw FormatError(where + ": field \"" + k + "\" missing or not a string");
    return j[k].get<std::string>();
  };
  auto num = [&](const char* k) -> uint64_t {
    if (!j.contains(k) || !j[k].is_number_unsigned())
      throw FormatError(where + ": field \"" + k + "\" missing or not a non-negative integer");
    return j[k].get<uint64_t>();
  };
  if (str("format") != kFileFormat) throw FormatError(where + ": not a ckpt signature file");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != kFileVersion)
    throw UnsupportedError(where + ": signature file version " + j.value("version", json()).dump() + ", this build reads " +
                           std::to_string(kFileVersion));
  if (str("algorithm") != kSignatureAlgorithm)
    throw UnsupportedError(where + ": algorithm \"" + str("algorithm") + "\", this build checks \"" + kSignatureAlgorithm + "\"");
  if (str("digest") != kSignatureDigest)
    throw UnsupportedError(where + ": digest \"" + str("digest") + "\", this build checks \"" + kSignatureDigest + "\"");
  SignatureFile p;
  p.statement.key_id = str("key_id");
  p.statement.format = str("checkpoint_format");
  p.statement.file_size = num("file_size");
  p.statement.file_digest = str("file_blake2b");
  p.statement.manifest_digest = str("manifest_blake2b");
  p.statement.tensors = num("tensors");
  p.statement.tensor_bytes = num("tensor_bytes");
  if (!from_base64(str("signature"), p.signature.data(), p.signature.size()))
    throw FormatError(where + ": field \"signature\" is not " + std::to_string(crypto_sign_BYTES) + " bytes of base64");
  return p;
}

std::string signature_file_text(const SignedStatement& s, const unsigned char* signature) {
  json j;
  j["format"] = kFileFormat;
  j["version"] = kFileVersion;
  j["algorithm"] = kSignatureAlgorithm;
  j["digest"] = kSignatureDigest;
  j["key_id"] = s.key_id;
  j["checkpoint_format"] = s.format;
  j["file_size"] = s.file_size;
  j["file_blake2b"] = s.file_digest;
  j["manifest_blake2b"] = s.manifest_digest;
  j["tensors"] = s.tensors;
  j["tensor_bytes"] = s.tensor_bytes;
  j["signature"] = to_base64(signature, crypto_sign_BYTES);
  return j.dump(2) + "\n";
}

}  // namespace ckpt::detail
