// The page's files (serve/ui/), compiled into the library by serve/ui/embed_assets.cmake, so the
// program serves exactly the page it was built with and needs no files installed beside it.
#pragma once

#include <span>
#include <string_view>

namespace ckpt::serve::ui {

struct Asset {
  std::string_view path;          // "/app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view bytes;
};

std::span<const Asset> assets();

}  // namespace ckpt::serve::ui
