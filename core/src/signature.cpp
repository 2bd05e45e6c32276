#include "atomic_file.hpp"
#include "atomic_write.hpp"
#include "small_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <set>
#include <unistd.h>

namespace ckpt {

namespace {

using detail::ensure_sodium;
using json = nlohmann::ordered_json;

constexpr const char* kMessageHeader = "ckpt-signature-2\n";
constexpr const char* kFileFormat = "ckpt-signature";
constexpr int64_t kFileVersion = 2;
// A signature file is a few hundred bytes.
constexpr size_t kMaxSignatureFileBytes = 64 << 10;
// ckpt 0.1 kept signatures inside the file.
constexpr const char* kLegacySignaturePath = "meta/signature";

std::string lp(const std::string& s) { return std::to_string(s.size()) + ":" + s; }

struct Parsed {
  SignedStatement statement;
  std::array<unsigned char, crypto_sign_BYTES> signature{};
};

// Reads a signature file strictly: exactly the fields this version writes, each of its type,
// so that nothing unsigned rides along in it.
Parsed parse_signature_file(const fs::path& path) {
  const std::string text = detail::read_small_file(path, kMaxSignatureFileBytes, "signature file");
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
  Parsed p;
  p.statement.key_id = str("key_id");
  p.statement.format = str("checkpoint_format");
  p.statement.file_size = num("file_size");
  p.statement.file_digest = str("file_blake2b");
  p.statement.manifest_digest = str("manifest_blake2b");
  p.statement.tensors = num("tensors");
  p.statement.tensor_bytes = num("tensor_bytes");
  if (!detail::from_base64(str("signature"), p.signature.data(), p.signature.size()))
    throw FormatError(where + ": field \"signature\" is not " + std::to_string(crypto_sign_BYTES) + " bytes of base64");
  return p;
}

std::string signature_file_text(const SignedStatement& s, const unsigned char* sig) {
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
  j["signature"] = detail::to_base64(sig, crypto_sign_BYTES);
  return j.dump(2) + "\n";
}

}  // namespace

fs::path default_signature_path(const fs::path& file) {
  fs::path p = file;
  p += kSignatureSuffix;
  return p;
}

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
  ensure_sodium();
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr, 0);
  return detail::to_hex(h, sizeof h);
}

std::string file_blake2b(const fs::path& path, uint64_t* size) {
  ensure_sodium();
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

std::optional<std::string> recorded_signer(const fs::path& path, const fs::path& signature) {
  const fs::path sig = signature.empty() ? default_signature_path(path) : signature;
  std::error_code ec;
  if (fs::symlink_status(sig, ec).type() == fs::file_type::not_found) return std::nullopt;
  try {
    return parse_signature_file(sig).statement.key_id;
  } catch (const Error&) {
    return std::string("(unreadable signature file)");
  }
}

std::optional<std::string> legacy_signer(const Document& tree) {
  const Group* g = tree.find_group_path(kLegacySignaturePath);
  if (!g) return std::nullopt;
  const Value* v = g->attribute("key_id");
  const std::string* s = v ? std::get_if<std::string>(v) : nullptr;
  return s ? *s : std::string("(none recorded)");
}

SignatureReport verify_signature(const fs::path& path, FormatReader& reader, const PublicKey& key,
                                 const fs::path& signature) {
  ensure_sodium();
  SignatureReport rep;
  rep.signature = signature.empty() ? default_signature_path(path) : signature;
  std::error_code ec;
  if (fs::symlink_status(rep.signature, ec).type() == fs::file_type::not_found) {
    std::string why = "not signed (no " + rep.signature.string() + ")";
    if (auto legacy = legacy_signer(reader.tree()))
      why += "; its in-file meta/signature (ckpt 0.1) does not bind the file's bytes and is not accepted: sign it again";
    rep.problems.push_back(why);
    return rep;
  }
  Parsed p;
  try {
    p = parse_signature_file(rep.signature);
  } catch (const Error& e) {
    rep.present = true;
    rep.problems.push_back(e.what());
    return rep;
  }
  rep.present = true;
  const SignedStatement& claimed = p.statement;
  rep.key_id = claimed.key_id;
  if (claimed.key_id != key.id()) {
    rep.problems.push_back("signed with key " + claimed.key_id + ", not with the given key " + key.id());
    return rep;
  }
  const std::string msg = signed_message(claimed);
  if (crypto_sign_verify_detached(p.signature.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                  key.bytes().data()) != 0) {
    rep.problems.push_back("the signature does not match its statement (the signature file was changed)");
    return rep;
  }
  // The statement is the signer's; now the file must be what it states.
  if (reader.format().name != claimed.format) {
    rep.problems.push_back("signed as a " + claimed.format + " file, read as " + reader.format().name);
    return rep;
  }
  uint64_t size = 0;
  const std::string digest = file_blake2b(path, &size);
  if (size != claimed.file_size || digest != claimed.file_digest) {
    rep.problems.push_back("the file's bytes are not the signed ones (" + std::to_string(size) + " bytes, BLAKE2b " +
                           digest.substr(0, 16) + "...; signed: " + std::to_string(claimed.file_size) + " bytes, " +
                           claimed.file_digest.substr(0, 16) + "...)");
    return rep;
  }
  const SignedStatement now = describe_for_signing(path, reader);
  rep.tensors = now.tensors;
  rep.bytes = now.tensor_bytes;
  rep.file_bytes = now.file_size;
  if (now.file_digest != claimed.file_digest)
    rep.problems.push_back("the file changed while it was being checked");
  else if (now.manifest_digest != claimed.manifest_digest || now.tensors != claimed.tensors ||
           now.tensor_bytes != claimed.tensor_bytes)
    rep.problems.push_back("what ckpt reads from the file (names, shapes, dtypes, attributes or tensor data, "
                           "external data included) is not what was signed");
  return rep;
}

SignReport sign_file(const fs::path& path, const SecretKey& key, const SignOptions& options) {
  ensure_sodium();
  const Registry& reg = options.registry ? *options.registry : Registry::global();
  LoadOptions lo;
  lo.format = options.format;
  lo.registry = &reg;
  auto reader = open(path, lo);
  VerifyReport check = verify(*reader);
  if (check.has_integrity && !check.ok()) {
    std::string msg = "'" + path.string() + "' does not match its own recorded hashes; not signing it:";
    for (const auto& p : check.problems) msg += "\n  " + p;
    throw IntegrityError(msg);
  }
  SignReport report;
  report.signature = options.signature.empty() ? default_signature_path(path) : options.signature;
  detail::check_save_target(report.signature);
  report.replaced_key_id = recorded_signer(path, report.signature);
  SignedStatement s = describe_for_signing(path, *reader);
  s.key_id = key.public_key().id();
  const std::string msg = signed_message(s);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), key.bytes().data());
  detail::write_text_atomically(report.signature, signature_file_text(s, sig), options.fsync);
  report.format = s.format;
  report.key_id = s.key_id;
  report.tensors = s.tensors;
  report.bytes = s.tensor_bytes;
  report.file_bytes = s.file_size;
  return report;
}

}  // namespace ckpt
