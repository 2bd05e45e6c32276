// A durable save hands its bytes to the disk while it is still writing them
// (core/src/early_writeback.hpp), so that the final fsync waits for the tail only. Watched
// from outside, through the page-cache state of the temporary (cachestat, Linux 6.5+): some of
// its pages are clean, written back, while the file is still growing. Without the early
// write-back (CKPT_EARLY_WRITEBACK=0) the kernel leaves a file this size dirty until the fsync.
#include "common.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <thread>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::reliability;

namespace {

#ifndef __NR_cachestat
#define __NR_cachestat 451  // the same number on every architecture that has it
#endif

struct CacheRange {
  uint64_t off = 0, len = 0;  // len 0: to the end of the file
};
struct CacheStat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

// Pages of `fd` in the page cache that are not dirty (written back, or handed to the disk and
// under write-back: submission clears the dirty tag), or -errno.
int64_t clean_pages(int fd) {
  CacheRange range;
  CacheStat st{};
  if (::syscall(__NR_cachestat, fd, &range, &st, 0) != 0) return -errno;
  return static_cast<int64_t>(st.nr_cache - st.nr_dirty);
}

// 16 MiB of the 128: well past the odd page the kernel cleans on its own.
constexpr int64_t kEnough = (16 << 20) / 4096;

TEST(EarlyWriteback, ADurableSaveReachesTheDiskBeforeItsLastByteIsWritten) {
  TempDir tmp("writeback");
  {
    struct statfs fs_info {};
    ASSERT_EQ(::statfs(tmp.path.c_str(), &fs_info), 0);
    if (fs_info.f_type == TMPFS_MAGIC) GTEST_SKIP() << tmp.path << " is on tmpfs, which has no write-back to watch";
    const int fd = ::open(tmp.path.c_str(), O_RDONLY | O_DIRECTORY);
    const int64_t probe = clean_pages(fd);
    ::close(fd);
    if (probe == -ENOSYS) GTEST_SKIP() << "this kernel has no cachestat (Linux 6.5+), the only view of write-back per file";
  }
  const Format format = Registry::global().get("msgpack");
  const fs::path path = tmp.path / file_name(format.info());
  const Sample sample = make_sample(format.info(), 128u << 20, 1);

  std::atomic<bool> done{false};
  uint64_t samples = 0, size_when_seen = 0;
  int64_t clean_when_seen = 0;
  std::thread watcher([&] {
    int fd = -1;
    while (!done.load()) {
      if (fd < 0) {
        auto temps = temporaries(tmp.path);
        if (!temps.empty()) fd = ::open(temps[0].c_str(), O_RDONLY);
      }
      if (fd >= 0) {
        struct stat st {};
        const int64_t clean = clean_pages(fd);
        if (::fstat(fd, &st) == 0 && clean >= kEnough && size_when_seen == 0) {
          size_when_seen = static_cast<uint64_t>(st.st_size);
          clean_when_seen = clean;
        }
        ++samples;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (fd >= 0) ::close(fd);
  });
  write_document(sample.doc, path, format, {.fsync = true});
  done = true;
  watcher.join();

  const uint64_t final_size = fs::file_size(path);
  ASSERT_GT(samples, 0u) << "the watcher never saw the temporary";
  ASSERT_GT(size_when_seen, 0u) << "not 16 MiB of the temporary were written back before the save's fsync ("
                                << samples << " looks)";
  EXPECT_LT(size_when_seen, final_size) << "write-back began only once the file was whole (" << clean_when_seen
                                        << " clean pages at " << size_when_seen << " bytes)";
}

}  // namespace
