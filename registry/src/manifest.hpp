// A version's manifest: the document skeleton (groups, attributes, each tensor's dtype and
// shape) with each tensor's content digest in place of its bytes. JSON, written the same way
// every time, so that its BLAKE2b-256 names the version's content.
#pragma once

#include <ckpt/document.hpp>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ckpt::model_registry::detail {

struct ManifestTensor {
  std::string path;
  std::string digest;
  uint64_t nbytes = 0;
  const Tensor* listed = nullptr;  // in the decoded tree
};

// `digests`: tensor path -> hex digest, one for every tensor of `tree`. UnsupportedError for an
// attribute string that is not UTF-8 (JSON cannot hold it).
std::string encode_manifest(const Document& tree, const std::unordered_map<std::string, std::string>& digests);
// The tree (tensors listed, without storage) and its tensors in document order; FormatError
// naming `where` for anything malformed.
Document decode_manifest(std::string_view text, std::vector<ManifestTensor>& tensors, const std::string& where);

}  // namespace ckpt::model_registry::detail
