// Opening files a user names (keys, signatures, inputs) without being fooled by what they are:
// a FIFO or a device is refused before any read can block on it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

namespace ckpt::detail {

namespace fs = std::filesystem;

// An open descriptor of the regular file at `path` (the caller closes it). The file is opened
// non-blocking, checked with fstat, then switched back to blocking. IoError when it cannot be
// opened; UsageError naming `what` when it is not a regular file.
int open_regular_file(const fs::path& path, const char* what);

// The whole of a regular file of at most `max_bytes` (LimitError beyond).
std::string read_small_file(const fs::path& path, size_t max_bytes, const char* what);

// Hands a regular file's bytes to `chunk` in pieces of up to 1 MiB, in order; `chunk` returns
// false to stop early. IoError on a failed read.
void read_chunks(const fs::path& path, const char* what, const std::function<bool(std::span<const std::byte>)>& chunk);

}  // namespace ckpt::detail
