// A document's skeleton as JSON text: its groups, its attributes exactly (doubles as their
// bits), each tensor's dtype and shape and a text of the caller's per tensor (a digest, a
// location), in document order. Written the same way every time, so a digest of the text names
// the skeleton. What the model registry keeps per version (its manifest) and what a sharded
// checkpoint's index holds of its document.
#pragma once

#include <ckpt/document.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// {"format": <format>, "version": <version>, "root": group}; group = {"a": [[name, type, value],
// ...], "c": [[name, "g", group] | [name, "t", dtype, shape, text], ...]}. `tensor_text(path)`
// gives each tensor's text. UnsupportedError for a name or string that is not UTF-8 (JSON
// cannot hold it), naming it.
std::string skeleton_text(const Document& tree, std::string_view format, int64_t version,
                          const std::function<std::string(const std::string& path)>& tensor_text);

struct SkeletonTensor {
  std::string path;
  std::string text;
  uint64_t nbytes = 0;
  const Tensor* listed = nullptr;  // in the parsed tree
};

// The tree (tensors listed, without storage) and its tensors in document order. FormatError
// naming `where` and the place for anything malformed, nested deeper than 512 groups included;
// UnsupportedError for another version.
Document parse_skeleton_text(std::string_view text, std::string_view format, int64_t version,
                             std::vector<SkeletonTensor>& tensors, const std::string& where);

}  // namespace ckpt
