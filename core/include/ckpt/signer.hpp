// Who signed a checkpoint, as its signature file says, unchecked (docs/reliability.md,
// "Signatures"). Apart from signature.hpp so that what only needs to name a file's signer
// (convert reports the signature it drops) depends on nothing of signing or checking.
#pragma once

#include <ckpt/document.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace ckpt {

namespace fs = std::filesystem;

inline constexpr const char* kSignatureSuffix = ".sig";

// FILE.sig: where a file's signature is kept unless a caller names another place.
fs::path default_signature_path(const fs::path& file);

// The key id a signature file beside `path` names, unchecked; nullopt when there is none.
std::optional<std::string> recorded_signer(const fs::path& path, const fs::path& signature = {});
// The key id of an in-file signature (meta/signature) as ckpt 0.1 wrote them; such signatures
// do not bind the file's bytes and are never accepted.
std::optional<std::string> legacy_signer(const Document& tree);

}  // namespace ckpt
