// Which checkpoint a page request names, and how its tree and tensors are read. A request names
// a served checkpoint by its model name and, for a training folder, may name one of the folder's
// checkpoint files by its bare name: only names the server itself listed are accepted, so no
// request reaches a file outside what was given on the command line.
#pragma once

#include <ckpt/checkpoint.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/keys.hpp>
#include <ckpt/signature.hpp>
#include <ckpt/serve/routes.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ckpt::serve::detail {
class HeldFile;
}

namespace ckpt::serve::ui {

namespace fs = std::filesystem;

// A request the page made that cannot be answered: the status and message of its JSON error.
struct HttpError : std::runtime_error {
  int status;
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
};

// The checkpoint files of a training folder, as ckpt's checkpoint manager names them
// (step-<9 digits>.<ext>, one extension: training_names.hpp), oldest first; regular files only
// (no links, no temporaries), at most kMaxFolderFiles of the newest. Empty for anything that
// is not a folder.
inline constexpr size_t kMaxFolderFiles = 1000;
struct FolderFile {
  std::string name;
  int64_t step = 0;
};
std::vector<FolderFile> training_files(const fs::path& folder);

// One checkpoint opened for a request: a file through its plugin, or the in-memory checkpoint a
// server holds. Files are read, never mapped: a mapping of a file that is truncated or rewritten
// while the page reads it would kill the whole process (SIGBUS), prediction API included, where
// a read fails with an error the page reports.
class OpenedCheckpoint {
 public:
  // A file or sharded folder named on the command line (links followed, as the user gave them).
  static OpenedCheckpoint from_file(const fs::path& file);
  // The file `name` of training folder `folder`, opened without following a link
  // (O_NOFOLLOW): a link in the folder is refused even when it appears after the listing.
  static OpenedCheckpoint from_folder(const fs::path& folder, const std::string& name);
  // The checkpoint a server holds in memory (what its predictions use); `file` is where it was
  // loaded from, shown only.
  static OpenedCheckpoint from_memory(std::shared_ptr<const Checkpoint> checkpoint, std::string label, std::string file);

  const Document& tree() const;
  // The file read, or for an in-memory checkpoint where it was loaded from.
  const fs::path& file() const { return file_; }
  bool in_memory() const { return !reader_; }
  const std::string& label() const { return label_; }
  std::string format() const;

  // The tensor at `path` of tree(): nullptr when there is none.
  const Tensor* find_tensor(const std::string& path) const;
  // Its bytes: a view of memory, else read into `buffer`.
  std::span<const std::byte> bytes(const std::string& path, const Tensor& listed, std::vector<std::byte>& buffer) const;
  // Every tensor against meta/integrity, one tensor in memory at a time.
  VerifyReport verify() const;

  // The signature file beside the checkpoint (FILE.sig): who it names, unchecked; nullopt when
  // there is none (and always for an in-memory checkpoint: the file may have changed since).
  std::optional<std::string> signer() const;
  // Why a signature file was not read (a link in a training folder); empty otherwise.
  const std::string& signature_problem() const { return signature_problem_; }
  SignatureReport check_signature(const PublicKey& key) const;

 private:
  // Runs f, naming the file instead of the descriptor path it was opened by in any error.
  template <class F>
  auto named(F&& f) const -> decltype(f());

  fs::path file_;       // what is shown and named in errors
  fs::path open_path_;  // what the reader opened: file_, or /proc/self/fd/N of the held descriptor
  fs::path signature_;  // the signature to read; empty: FILE.sig beside open_path_
  bool signature_absent_ = false;
  std::string signature_problem_;
  std::string label_;
  std::shared_ptr<detail::HeldFile> held_;  // a training folder's file; before reader_: outlives it
  std::shared_ptr<FormatReader> reader_;
  std::shared_ptr<const Checkpoint> checkpoint_;
  std::shared_ptr<Document> memory_;
};

// What a request names, resolved against a snapshot of the served list.
struct Resolved {
  ServedCheckpoint served;
  fs::path file;           // a file given on the command line to read; empty: see below
  std::string file_name;   // the training folder's file to read (named by the request, or its newest)
  bool training_folder = false;

  // The folder file when one is named; else the server's in-memory checkpoint when it holds one
  // (`ckpt serve`: what predictions use, whatever happened to the file since); else the file.
  OpenedCheckpoint open() const;
  std::string label() const;
};

// `model` names a served checkpoint (404 when none is served by that name; `version`, when
// given, must be the one served); `file`, when not empty, one of training_files(its source).
Resolved resolve(const std::vector<ServedCheckpoint>& served, const std::string& model,
                 const std::optional<int64_t>& version, const std::string& file);

// Bytes of tensor data the page's requests hold in memory at once, all requests together:
// a request that would pass the budget is refused with 503 rather than queued, so that many
// requests for large tensors cannot exhaust memory.
inline constexpr uint64_t kMaxTensorBytes = uint64_t{1} << 30;    // one tensor's statistics, or one side of a diff
inline constexpr uint64_t kMemoryBudget = uint64_t{2} << 30;
// Throws HttpError 413 for a tensor over kMaxTensorBytes; `what` names it.
void check_tensor_size(uint64_t bytes, const std::string& what);
class MemoryLease {
 public:
  explicit MemoryLease(uint64_t bytes);  // throws HttpError 413 past the whole budget, 503 when busy
  ~MemoryLease();
  MemoryLease(const MemoryLease&) = delete;
  MemoryLease& operator=(const MemoryLease&) = delete;

 private:
  uint64_t bytes_;
};

}  // namespace ckpt::serve::ui
