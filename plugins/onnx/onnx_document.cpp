#include "onnx_document.hpp"

#include "onnx_layout.hpp"
#include "text.hpp"

#include <ckpt/sdk_skeleton.hpp>

namespace ckpt_onnx {

namespace {

// Files ckpt wrote keep reading, and rewriting one gives the same bytes.
constexpr ckpt::sdk::SkeletonKeys kKeys{.format = "ckpt-onnx-document",
                                        .version = kDocumentVersion,
                                        .attributes = "attributes",
                                        .children = "children",
                                        .location = "initializer",
                                        .name_in_child = true,
                                        .floats_as_bits = false,
                                        .omit_empty = true,
                                        .max_depth = kMaxDepth};

constexpr std::string_view kAttributePrefix = "ckpt//node/", kAttributeMiddle = "/attribute/";

// A decimal index without sign or leading zeros.
std::optional<size_t> index_of(std::string_view s) {
  if (s.empty() || s.size() > 18 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

}  // namespace

std::string attribute_location(size_t node, size_t attribute) {
  return std::string(kAttributePrefix) + std::to_string(node) + std::string(kAttributeMiddle) + std::to_string(attribute);
}

std::optional<std::pair<size_t, size_t>> attribute_location(std::string_view location) {
  if (!location.starts_with(kAttributePrefix)) return std::nullopt;
  location.remove_prefix(kAttributePrefix.size());
  const size_t middle = location.find(kAttributeMiddle);
  if (middle == std::string_view::npos) return std::nullopt;
  auto node = index_of(location.substr(0, middle));
  auto attribute = index_of(location.substr(middle + kAttributeMiddle.size()));
  if (!node || !attribute) return std::nullopt;
  return std::pair(*node, *attribute);
}

std::string document_to_json(const Document& doc) {
  return ckpt::sdk::write_skeleton(doc.tree, kKeys, [&](size_t k) { return std::string_view(doc.initializers[k]); });
}

Document document_from_json(std::string_view json, const std::string& source) {
  Document doc;
  ckpt::sdk::SkeletonSource from;
  from.where = [&](const std::string& path) {
    return "'" + source + "': metadata " + std::string(kDocumentKey) + " at " +
           (path.empty() ? std::string("the root group") : quote_text(path)) + ": ";
  };
  doc.tree = ckpt::sdk::read_skeleton(json, kKeys, from, [&](const Tree::Tensor&, std::string initializer, const std::string&) {
    doc.initializers.push_back(std::move(initializer));
    return doc.initializers.size() - 1;
  });
  return doc;
}

std::string value_as_text(const Value& v) {
  if (v.type == CKPT_VALUE_STRING && valid_utf8(v.s)) return v.s;
  return ckpt::sdk::write_value(v, kKeys);
}

}  // namespace ckpt_onnx
