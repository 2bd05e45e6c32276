// Messages that name a path the user never gave (the temporary a save writes before its rename
// into place, a held descriptor's /proc/self/fd/N) are rewritten to name the path they stand for.
#pragma once

#include <ckpt/errors.hpp>

#include <functional>
#include <string>

namespace ckpt {

// Rethrows the exception being handled as the same type of errors.hpp with `rename` applied to
// its message; any other exception as it is. Call inside a catch block only.
[[noreturn]] void rethrow_renamed(const std::function<std::string(std::string)>& rename);

// `text` with every occurrence of `from` that is not the start of a longer number
// (/proc/self/fd/1 in /proc/self/fd/12) replaced by `to`.
std::string replace_path(std::string text, const std::string& from, const std::string& to);

}  // namespace ckpt
