#include "manifest.hpp"

#include <ckpt/skeleton_text.hpp>

#include <ckpt/errors.hpp>

namespace ckpt::model_registry::detail {

namespace {
constexpr const char* kFormat = "ckpt-registry-manifest";
constexpr int64_t kVersion = 1;
}  // namespace

std::string encode_manifest(const Document& tree, const std::unordered_map<std::string, std::string>& digests) {
  try {
    return skeleton_text(tree, kFormat, kVersion, [&](const std::string& path) {
      auto it = digests.find(path);
      if (it == digests.end()) throw Error("registry manifest: no digest for tensor " + path);
      return it->second;
    });
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(std::string("the registry keeps attributes as JSON text: ") + e.what());
  }
}

Document decode_manifest(std::string_view text, std::vector<ManifestTensor>& tensors, const std::string& where) {
  std::vector<SkeletonTensor> listed;
  Document doc = parse_skeleton_text(text, kFormat, kVersion, listed, where + ": manifest");
  tensors.clear();
  for (auto& t : listed) tensors.push_back({std::move(t.path), std::move(t.text), t.nbytes, nullptr});
  for (auto& t : tensors) t.listed = doc.find_tensor_path(t.path);
  return doc;
}

}  // namespace ckpt::model_registry::detail
