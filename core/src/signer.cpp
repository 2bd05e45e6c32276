#include "signature_file.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/signer.hpp>

namespace ckpt {

namespace {

// ckpt 0.1 kept signatures inside the file.
constexpr const char* kLegacySignaturePath = "meta/signature";

}  // namespace

fs::path default_signature_path(const fs::path& file) {
  fs::path p = file;
  p += kSignatureSuffix;
  return p;
}

std::optional<std::string> recorded_signer(const fs::path& path, const fs::path& signature) {
  const fs::path sig = signature.empty() ? default_signature_path(path) : signature;
  std::error_code ec;
  if (fs::symlink_status(sig, ec).type() == fs::file_type::not_found) return std::nullopt;
  try {
    return detail::parse_signature_file(sig).statement.key_id;
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

}  // namespace ckpt
