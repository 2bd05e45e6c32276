// Per-tensor hashes and a manifest digest, recorded in meta/integrity and checked by verify.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/format_io.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace ckpt {

inline constexpr const char* kHashAlgorithm = "xxh3_64";

uint64_t hash_bytes(std::span<const std::byte> bytes);
std::string hash_hex(uint64_t h);

// How a manifest spells names. v1 (ckpt 0.1) wrote paths bare, so a name holding a newline
// could forge another record; v2 length-prefixes every path and string, so each record, and so
// the whole manifest, has exactly one reading. v1 is still checked in files that record it.
enum class ManifestEncoding { v1, v2 };
inline constexpr const char* kManifestEncodingV2 = "ckpt-manifest-2";

// The canonical text of everything the digest covers (every group, attribute and tensor with its
// hash, one record each, sorted), excluding meta/integrity itself. `tensor_hashes` maps tensor
// path -> hex digest.
std::string canonical_manifest(const Document& doc,
                               const std::vector<std::pair<std::string, std::string>>& tensor_hashes,
                               ManifestEncoding encoding = ManifestEncoding::v2);

// Hashes every tensor and writes meta/integrity {algorithm, paths, digests, manifest}.
void add_integrity(Document& doc);
// Writes meta/integrity from hashes already known (path -> hex digest), e.g. while converting.
void write_integrity(Document& doc, const std::vector<std::pair<std::string, std::string>>& hashes);
// Sets the attributes of the existing group meta/integrity, changing no group's children: for
// a writer already walking the document (convert fills it after the last tensor, before the
// walk reaches it).
void fill_integrity(Document& doc, const std::vector<std::pair<std::string, std::string>>& hashes);

// What is wrong with meta/integrity as a record of `doc`'s structure, taking each tensor's data
// to be as recorded (checked as the data is read): a damaged record, tensors without a hash or
// hashes without a tensor, a manifest that names, shapes, dtypes or attributes no longer match.
// Empty when there is no record.
std::vector<std::string> record_problems(const Document& doc);

// Tensor path -> hex digest as recorded in meta/integrity; empty when absent or damaged.
std::map<std::string, std::string> recorded_digests(const Document& doc);

// What a consumer of the file reads from other files that its reader did not read (the
// reader's meta/@external_references, "<place> -> <target>"): bytes neither the recorded hashes
// nor a signature cover. A record of another type than string[] is one entry saying so, never
// nothing: sign refuses such a file rather than miss a reference.
std::vector<std::string> external_references(const Document& doc);

struct VerifyReport {
  bool has_integrity = false;
  size_t tensors_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<std::string> problems;  // each names the tensor or attribute path
  // external_references(): not a problem of the file's data, but what its hashes cannot vouch for.
  std::vector<std::string> not_covered;
  bool ok() const { return problems.empty(); }
};

// Streams every tensor of an open file through the hash, one at a time.
VerifyReport verify(FormatReader& reader);
// Checks an in-memory document (used by load with verify on).
VerifyReport verify_document(const Document& doc);

}  // namespace ckpt
