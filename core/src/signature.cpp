// Signing a checkpoint and checking its signature. What is signed: signed_statement.cpp; the
// signature file's text: signature_file.cpp; who signed, unchecked: signer.cpp.
#include "atomic_file.hpp"
#include "atomic_write.hpp"
#include "signature_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signature.hpp>

#include <sodium.h>

namespace ckpt {

using detail::ensure_sodium;

namespace {

// What a consumer of the file reads from other files that neither the file's bytes nor the
// manifest hold: the reader's meta/@external_references (sdk_records.hpp), such as an HDF5
// external link, which h5py follows when the link is read and the hdf5 plugin records without
// following. External data a reader reads itself (ONNX tensors beside the model) is in the
// manifest and needs no check here.
std::string uncovered_text(const std::vector<std::string>& references) {
  std::string msg = "it references other files, which its consumers (h5py, ONNX Runtime, ...) read and a "
                    "signature cannot cover:";
  for (size_t i = 0; i < references.size(); ++i) msg += (i ? ", " : " ") + references[i];
  return msg;
}

}  // namespace

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
  detail::SignatureFile p;
  try {
    p = detail::parse_signature_file(rep.signature);
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
  if (const auto references = external_references(reader.tree()); !references.empty())
    rep.problems.push_back("not covered: " + uncovered_text(references));
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
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw UnsupportedError("'" + path.string() + "': not signing it: a folder (a sharded checkpoint) is not signed as "
                           "one file; `ckpt verify` checks its chunks against the index's hashes");
  auto reader = open(path, lo);
  if (const auto references = external_references(reader->tree()); !references.empty())
    throw UnsupportedError("'" + path.string() + "': not signing it: " + uncovered_text(references));
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
  detail::write_text_atomically(report.signature, detail::signature_file_text(s, sig), options.fsync);
  report.format = s.format;
  report.key_id = s.key_id;
  report.tensors = s.tensors;
  report.bytes = s.tensor_bytes;
  report.file_bytes = s.file_size;
  return report;
}

}  // namespace ckpt
