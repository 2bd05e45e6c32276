// Starts the disk on a durable save's bytes while the format is still producing them.
//
// Linux keeps a file's written pages dirty in memory until the dirty-background threshold (10%
// of available memory) or 30 s pass, so without help a 1 GiB save serialises first and only
// begins to reach the disk at its final fsync: the save takes serialising time plus disk time.
// A thread that asks for write-back of what is already written (sync_file_range with
// SYNC_FILE_RANGE_WRITE, as PostgreSQL's *_flush_after and RocksDB's bytes_per_sync do)
// overlaps the two, and the final fsync waits only for the tail and the journal commit. The
// request is asynchronous and may block in the block layer when the device queue is full,
// which is why it runs beside the writer and not in its loop.
//
// It touches only the page cache's write-back; durability still rests on AtomicFile::commit's
// fsync, which also reports any write error. Errors of sync_file_range itself are ignored.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

namespace ckpt::detail {

class EarlyWriteback {
 public:
  // `fd` is any descriptor of the file being written; it must stay open while this lives.
  explicit EarlyWriteback(int fd);
  ~EarlyWriteback();  // stops and joins the thread
  EarlyWriteback(const EarlyWriteback&) = delete;
  EarlyWriteback& operator=(const EarlyWriteback&) = delete;

  // False when CKPT_EARLY_WRITEBACK=0 is set in the environment (read once per process).
  static bool enabled();

 private:
  void run();

  int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ckpt::detail
