// The file minizip writes a zip into. The caller fills 4 MiB buffers and a writer thread
// pwrites them, so that minizip's own work on the caller's thread (it copies every byte of a
// stored entry into its 64 KiB buffer, one at a time, and computes the CRC) overlaps the
// kernel's copy into the page cache, which is the other half of a save's time. It can also
// seek, because minizip goes back to patch each local header once the entry's data is written.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ckpt_pytorch {

class OutputStream {
 public:
  explicit OutputStream(const std::string& path);
  ~OutputStream();
  OutputStream(const OutputStream&) = delete;
  OutputStream& operator=(const OutputStream&) = delete;

  // These return false once a write has failed; error() says why. They never throw: minizip
  // calls them through C function pointers.
  bool write(const void* data, size_t n);
  uint64_t tell() const { return pos_ + current_.size(); }
  // Everything written before a seek is on its way to the file before anything after it.
  bool seek(uint64_t to);
  // Waits until everything written so far is in the file.
  bool flush();
  std::string error() const;
  // Records a failure the caller met (nothing more will be written).
  void abandon(const std::string& why);
  // Flushes and closes the file; throws ckpt::sdk::Error naming the path on any failure.
  void close();

 private:
  struct Chunk {
    std::vector<char> bytes;
    uint64_t at = 0;
  };
  void submit();
  void drain();
  void run();
  bool failed() const;

  std::string path_;
  int fd_ = -1;
  uint64_t pos_ = 0;           // where current_'s first byte goes
  std::vector<char> current_;  // filled by the caller
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Chunk> queue_;               // waiting for the writer thread
  std::vector<std::vector<char>> spare_;  // buffers the writer thread has finished with
  size_t writing_ = 0;                    // chunks the writer thread holds
  bool stop_ = false;
  std::string error_;
  std::thread writer_;
};

}  // namespace ckpt_pytorch
