// A checkpoint of a folder the server watches (a training folder), opened without following a
// link and held open while it is read. The folder was listed with links left out, but a name
// can be swapped for a link after the listing: a reader given the name would follow it (out of
// the folder, to /etc/hostname). Readers are given the held descriptor's own file instead
// (/proc/self/fd/N), and their messages are renamed back to the file's name.
#pragma once

#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::serve::detail {

namespace fs = std::filesystem;

// Descriptor path -> the path it stands for.
using Names = std::vector<std::pair<std::string, std::string>>;

// `text` with each descriptor path in `names` replaced (ckpt::replace_path).
std::string renamed(std::string text, const Names& names);
// Rethrows the exception being handled as the same type with its message renamed (the page's
// HttpError and HeldFile::Refused too); anything else as it is.
[[noreturn]] void rethrow_renamed(const Names& names);

class HeldFile {
 public:
  // Why a file was not held: a link, gone since the listing, not a regular file. Other
  // failures to open are IoErrors.
  enum class Refusal { link, gone, not_regular };
  struct Refused : IoError {
    Refusal why;
    Refused(Refusal why, const std::string& message) : IoError(message), why(why) {}
  };

  // Holds `file` and, if there is one that is not a link, its signature (FILE.sig).
  explicit HeldFile(const fs::path& file);
  ~HeldFile();
  HeldFile(const HeldFile&) = delete;
  HeldFile& operator=(const HeldFile&) = delete;

  const fs::path& file() const { return file_; }
  // What a reader opens: /proc/self/fd/N of the held file.
  const fs::path& open_path() const { return open_path_; }
  // The held signature's /proc path; empty when there is none (see signature_is_link()).
  const fs::path& signature() const { return signature_; }
  // FILE.sig exists but is a link, which is not read.
  bool signature_is_link() const { return signature_is_link_; }
  Names names() const;
  // The file's format: by its name, as the checkpoint manager wrote it, else by its content.
  Format format() const;

  // f(), its errors naming the file instead of the descriptor paths.
  template <class F>
  auto named(F&& f) const -> decltype(f()) {
    try {
      return f();
    } catch (...) {
      rethrow_renamed(names());
    }
  }

 private:
  fs::path file_, open_path_, signature_;
  int fd_ = -1, signature_fd_ = -1;
  bool signature_is_link_ = false;
};

}  // namespace ckpt::serve::detail
