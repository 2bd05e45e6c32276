// A file that appears under its name only when complete: written under a hidden temporary
// name in the same folder, then fsync'd and renamed over the target, then the folder fsync'd.
// If anything throws before commit(), the temporary is removed.
//
// While it exists, the temporary carries an open-file-description lock (F_OFD_SETLK) held by
// its writer, so `ckpt gc` and the next save can tell a live writer's temporary from one left
// by a killed process: the kernel drops the lock when the process dies. OFD locks, not
// flock(): libhdf5 flock()s the files it creates, and the two kinds never conflict on Linux.
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
  // Removes stale temporaries in the target's folder first (their space may be what this
  // save needs), then creates and locks its own, empty: a writer must open it truncating.
  explicit AtomicFile(const fs::path& target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const fs::path& temp_path() const { return temp_; }
  // The descriptor that holds the lock; the writer writes through a descriptor of its own.
  int fd() const { return lock_fd_; }
  void commit(bool durable = true);

 private:
  fs::path target_;
  fs::path temp_;
  int lock_fd_ = -1;
  bool committed_ = false;
};

bool is_temp_name(const std::string& filename);

// The pieces AtomicFile is made of, for other things that appear only when whole (a sharded
// checkpoint's folder): fsync of a folder (IoError), a whole-file OFD lock (0 when taken, else
// the errno: EAGAIN when someone holds one), whether `fd` is still the file at `p`, and 12 random
// hex digits.
void fsync_dir(const fs::path& p);
int ofd_lock(int fd, short type);
bool same_file(int fd, const fs::path& p);
std::string random_name_suffix();

// Throws UsageError when `target` exists and is not a regular file (a device, a FIFO, a
// folder, a socket, or a symlink to one of those): a save must never rename a file over it.
void check_save_target(const fs::path& target);

}  // namespace ckpt::detail
