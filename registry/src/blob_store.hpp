// The store folder: each tensor's bytes once, under their BLAKE2b-256 digest
// (blobs/ab/abcdef...), written through a temporary and renamed into place, read back through
// a mapping and re-hashed before anything is handed out.
//
// store/.lock orders registrations against gc: a registrant holds it shared from before its
// version exists until the version is READY, gc holds it exclusively. So while gc holds it no
// registrant is alive, and every PENDING version was left by a dead one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <sys/types.h>
#include <span>
#include <string>
#include <vector>

namespace ckpt::model_registry::detail {

namespace fs = std::filesystem;

std::string blake2b256_hex(std::span<const std::byte> bytes);

class StoreLock {
 public:
  enum class Mode { shared, exclusive };
  // Waits up to `wait_seconds` (IoError naming the store when it times out).
  StoreLock(const fs::path& store, Mode mode, double wait_seconds);
  ~StoreLock();
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;

 private:
  int fd_ = -1;
};

// A blob's bytes, mapped; keeps the mapping alive.
class Blob {
 public:
  // `name` in the open folder `folder`, not followed when it is a link; `shown` names it in errors.
  // A small blob is read into `into` (expected_size bytes the caller keeps alive) when given,
  // else into memory of its own.
  Blob(int folder, const std::string& name, const fs::path& shown, uint64_t expected_size, const std::string& what,
       std::byte* into = nullptr);
  ~Blob();
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  static constexpr size_t kMapThreshold = 1 << 20;

 private:
  std::vector<std::byte> copy_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;
};

// Where mapped bytes come from: the file and offset of a mapping of this process
// (/proc/self/maps), so that a tensor a reader mapped can be copied file to file.
class FileMappings {
 public:
  FileMappings();  // reads /proc/self/maps once
  ~FileMappings();
  FileMappings(const FileMappings&) = delete;
  FileMappings& operator=(const FileMappings&) = delete;
  struct Source {
    int fd = -1;  // owned by this object
    uint64_t offset = 0;
  };
  // nullopt when `bytes` do not lie wholly in one mapping of a regular file that is still the
  // one mapped (same device and inode).
  std::optional<Source> find(std::span<const std::byte> bytes);

 private:
  struct Mapping {
    uintptr_t start = 0, end = 0;
    uint64_t offset = 0;
    dev_t dev = 0;
    ino_t inode = 0;
    std::string path;
    int fd = -2;  // -2: not opened yet, -1: could not be
  };
  std::vector<Mapping> maps_;
};

class BlobStore {
 public:
  // Creates blobs/ and tmp/ when missing and holds them open (O_NOFOLLOW): every later use goes
  // through those descriptors, never through a path a store writer could swap for a link.
  explicit BlobStore(fs::path root);
  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;
  const fs::path& root() const { return root_; }
  fs::path blob_path(const std::string& digest) const;
  // True when the blob is there with `size` bytes (its content is checked when read).
  bool has(const std::string& digest, uint64_t size) const;
  // Where bytes given to put() live: `own` memory of this process (read into a buffer) cannot
  // change between their hash and their write; `shared` bytes (mapped from a file another
  // process may rewrite) are re-hashed as written.
  enum class Source { own, shared };
  // Writes the blob unless the store holds one under `digest` with that size (not re-hashed:
  // every blob was re-hashed before it took its name, and reads re-hash); returns the bytes
  // written. IntegrityError when shared bytes written are not the digest's (the source changed
  // after it was hashed). Not durable until sync().
  uint64_t put(const std::string& digest, std::span<const std::byte> bytes, Source source = Source::shared);
  // The same for bytes that are `length` bytes at `offset` of the open file `fd`: copied by the
  // kernel (copy_file_range), never through user memory (on the machine the benchmark ran on,
  // writing a page-cache page from user memory cost 2.5 times what the kernel's copy does), then
  // re-hashed.
  uint64_t put_from_file(const std::string& digest, int fd, uint64_t offset, uint64_t length);
  // For bytes not expected in the store: copied by the kernel first, and the copy hashed, so
  // that what the blob holds is hashed once and is exactly what its name says, whatever the
  // source does meanwhile. Dropped when the store turns out to hold the blob already.
  struct Copied {
    std::string digest;
    uint64_t written = 0;
  };
  Copied copy_from_file(int fd, uint64_t offset, uint64_t length);
  // The blob is there with `size` bytes that hash to `digest`.
  bool intact(const std::string& digest, uint64_t size) const;
  // Makes every blob written so far durable: one syncfs of the store's file system rather than
  // an fsync per blob (a checkpoint of 10,000 small tensors would wait on 10,000 fsyncs).
  void sync() const;
  // Mapped and re-hashed: IntegrityError naming `what` (the tensor) when the bytes are not the
  // digest's, or the blob is missing or of the wrong size.
  std::unique_ptr<Blob> get(const std::string& digest, uint64_t size, const std::string& what,
                            std::byte* into = nullptr) const;

  struct Entry {
    std::string digest;
    fs::path path;
    uint64_t bytes = 0;
  };
  std::vector<Entry> list() const;
  // blobs/ holds nothing.
  bool empty() const;
  // Creates the file `name` in the store's root holding `content`, whole or not at all (written
  // in tmp/, then linked): nothing when a file of that name exists already.
  void publish_once(const std::string& name, const std::string& content) const;
  // Temporaries left in tmp/ by dead registrants (call under the exclusive lock).
  std::vector<fs::path> temporaries() const;
  // Unlinks a listed blob or temporary through descriptors of its folders opened without
  // following links, so that a folder swapped for a link after it was listed is not followed.
  void remove_blob(const Entry& e) const;
  void remove_temporary(const fs::path& p) const;
  // Moves a blob whose bytes are not its digest's into tmp/ (call under the exclusive lock, so
  // that no registrant is storing it meanwhile): true when it was damaged and moved. A blob the
  // store does not hold in place is not stored again while a damaged one holds its name.
  bool set_aside_if_damaged(const std::string& digest, uint64_t size) const;

 private:
  int prefix_folder(const std::string& digest, bool create) const;
  std::string new_temporary(const std::string& stem) const;
  int create_temporary(const std::string& name) const;
  void drop_temporary(const std::string& name) const noexcept;
  void copy_into(const std::string& tmp, int fd, uint64_t offset, uint64_t length) const;
  void check_written(const std::string& tmp, const std::string& digest, uint64_t size) const;
  // Renames a whole, checked temporary to the digest's name (removing it on failure).
  void install(const std::string& tmp, const std::string& digest) const;
  void close_all() noexcept;
  fs::path root_;
  int root_fd_ = -1, blobs_fd_ = -1, tmp_fd_ = -1;
};

}  // namespace ckpt::model_registry::detail
