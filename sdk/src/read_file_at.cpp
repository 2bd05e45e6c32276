// sdk::read_file_at, compiled into libckpt_sdk_static.a (see sdk/CMakeLists.txt) rather than inline
// in ckpt/sdk_io.hpp: it works around one CPU family's slow kernel copy, which is no part of
// the SDK's interface and may be dropped or retuned without touching a public header.
#include <ckpt/sdk_io.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

namespace ckpt::sdk {

namespace {

constexpr uint64_t kPage = 4096;
// Stays in L2 between the two copies.
constexpr size_t kBounceChunk = 256 << 10;

}  // namespace

// The kernel copies out of the page cache with `rep movsb`, which on AMD EPYC (erms, fsrm) runs
// at a third of its speed when the destination lies 1-31 bytes past the source modulo 4096:
// exactly what a page-aligned tensor read into a malloc'd buffer (16 bytes past a page) gives.
// Such reads go through a small buffer placed half a page away from both, which costs a copy
// from L2 and still wins by far; reads at any other distance, and small ones, go straight to
// `dst`. Figures: benchmarks/README.md, "Reading out of the page cache".
void read_file_at(int fd, uint64_t offset, std::span<std::byte> dst, const std::string& path) {
  const uint64_t distance = (reinterpret_cast<uintptr_t>(dst.data()) - offset) & (kPage - 1);
  if (dst.size() < kBounceChunk || distance < 1 || distance >= 32) return detail::pread_all(fd, offset, dst, path);
  const std::unique_ptr<std::byte[]> raw(new std::byte[kBounceChunk + 2 * kPage]);
  const uintptr_t base = (reinterpret_cast<uintptr_t>(raw.get()) + kPage - 1) & ~uintptr_t{kPage - 1};
  std::byte* bounce = reinterpret_cast<std::byte*>(base + ((offset + kPage / 2) & (kPage - 1)));
  for (size_t done = 0; done < dst.size();) {
    const size_t n = std::min(kBounceChunk, dst.size() - done);
    detail::pread_all(fd, offset + done, {bounce, n}, path);
    std::memcpy(dst.data() + done, bounce, n);
    done += n;
  }
}

}  // namespace ckpt::sdk
