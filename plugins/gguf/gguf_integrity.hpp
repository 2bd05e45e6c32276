// ckpt's record of hashes for a GGUF file the writer makes (docs/schema.md, "The canonical
// manifest"; docs/formats/gguf.md, "Hashes"). GGUF has no groups, so the host cannot hand the
// writer a meta/integrity that describes the file: the writer flattens names, shortens them,
// renames a Llama state dict's tensors and adds keys. So the writer hashes what it writes, and
// the manifest is computed over the document its own reader lists for the header it wrote.
#pragma once

#include "gguf_reader.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt_gguf {

inline constexpr std::string_view kHashAlgorithm = "xxh3_64";
inline constexpr std::string_view kManifestEncoding = "ckpt-manifest-2";

// XXH3-64 of a tensor's bytes as 16 hex digits.
std::string digest_hex(std::span<const std::byte> bytes);

// The manifest digest (16 hex digits) of the document `parsed` lists once it has a record,
// with `digests[i]` the digest of parsed.tensors[i]; meta/integrity is left out, as the core
// leaves it out (core/src/integrity.cpp, canonical_manifest: this is the same rule, encoding
// v2, and a test checks the two agree through `ckpt verify`).
std::string manifest_digest(const Parsed& parsed, const std::vector<std::string>& digests);

}  // namespace ckpt_gguf
