// The web page of `ckpt serve --ui` and `ckpt view` (docs/web-page.md): the page itself at `/`
// (HTML, CSS and JavaScript compiled into the library from serve/ui/), and the JSON API under
// /api/ui/ it reads: what is served, a checkpoint's tree and schema parts, a tensor's
// statistics, a diff of two checkpoints, a training folder's metrics, a full hash check.
#pragma once

#include <ckpt/keys.hpp>
#include <ckpt/serve/routes.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace ckpt::serve {

struct UiOptions {
  // Shown by the page: "serve" (ckpt serve --ui) or "view" (ckpt view).
  std::string mode = "serve";
  // Signatures (FILE.sig) are checked against this key by the page's hash check; without one
  // the page shows who a signature names, unchecked.
  std::optional<PublicKey> pubkey{};
};

// Adds GET /api/ui/... and GET / (a prefix route, so it answers every GET path that no route
// added before it takes: add the page's routes after the others).
void add_ui_routes(Router& router, ServedList served, UiOptions options);
void add_ui_routes(Router& router, ServedList served);

// The newest checkpoint file of a training folder, as the page lists them: regular files (not
// links) named step-<9 digits>.<ext> with exactly one extension, as the model server polls
// them (a signature step-....<ext>.sig is not one); empty when `folder` holds none.
std::filesystem::path newest_training_file(const std::filesystem::path& folder);

}  // namespace ckpt::serve
