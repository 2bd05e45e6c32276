// A file that appears under its name only when complete: written under a hidden temporary
// name in the same folder, then fsync'd and renamed over the target, then the folder fsync'd.
// If anything throws before commit(), the temporary is removed.
#pragma once

#include <filesystem>
#include <string>

namespace ckpt::detail {

namespace fs = std::filesystem;

// Temporaries are named ".<name>.ckpt-tmp-<random>": hidden, and never matching a checkpoint
// name, so a listing of checkpoints cannot pick up a half-written one.
inline constexpr const char* kTempMarker = ".ckpt-tmp-";

class AtomicFile {
 public:
  explicit AtomicFile(const fs::path& target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const fs::path& temp_path() const { return temp_; }
  void commit(bool durable = true);

 private:
  fs::path target_;
  fs::path temp_;
  bool committed_ = false;
};

bool is_temp_name(const std::string& filename);

}  // namespace ckpt::detail
