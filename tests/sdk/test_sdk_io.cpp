// sdk::MappedFile::read_at gives the file's bytes whatever the destination's place in its page:
// reads the kernel would copy slowly (destination 1-31 bytes past the source modulo 4096) take
// a bounce buffer, and must still land exactly, from any file offset, for any length.
#include <ckpt/sdk_io.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct File {
  fs::path path = fs::temp_directory_path() / ("ckpt-sdk-io-" + std::to_string(::getpid()));
  std::vector<std::byte> bytes;
  explicit File(size_t n) : bytes(n) {
    std::mt19937_64 rng(5);
    for (auto& b : bytes) b = static_cast<std::byte>(rng());
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n));
  }
  ~File() { fs::remove(path); }
};

}  // namespace

TEST(SdkMappedFile, ReadAtLandsExactlyAtEveryDistanceFromTheSourcesPage) {
  const File f(3u << 20);
  const ckpt::sdk::MappedFile m(f.path.string());
  // Page-aligned storage with room to place the destination anywhere in a page, and guard bytes
  // after it that no read may touch.
  std::vector<std::byte> storage((3u << 20) + 3 * 4096);
  const uintptr_t page = (reinterpret_cast<uintptr_t>(storage.data()) + 4095) & ~uintptr_t{4095};
  for (uint64_t src : {uint64_t{0}, uint64_t{64}, uint64_t{4096 + 3}, uint64_t{12288 + 4000}})
    for (size_t dst_off : {size_t{0}, size_t{1}, size_t{16}, size_t{31}, size_t{32}, size_t{64}, size_t{2048}})
      for (size_t n : {size_t{100}, size_t{256 << 10}, size_t{(256 << 10) + 1}, size_t{(2u << 20) + 777}}) {
        std::byte* dst = reinterpret_cast<std::byte*>(page + (src + dst_off) % 4096);
        std::fill(storage.begin(), storage.end(), std::byte{0xAB});
        m.read_at(src, {dst, n});
        const std::string where = "src " + std::to_string(src) + ", destination " + std::to_string(dst_off) +
                                  " past the source's page offset, " + std::to_string(n) + " bytes";
        ASSERT_EQ(std::memcmp(dst, f.bytes.data() + src, n), 0) << where;
        EXPECT_EQ(dst[n], std::byte{0xAB}) << where << ": wrote past the end";
        if (dst > storage.data()) {
          EXPECT_EQ(dst[-1], std::byte{0xAB}) << where << ": wrote before the start";
        }
      }
}

TEST(SdkMappedFile, ReadAtPastTheEndIsAnIoErrorNamingTheFile) {
  const File f(1u << 20);
  const ckpt::sdk::MappedFile m(f.path.string());
  std::vector<std::byte> storage((1u << 20) + 2 * 4096);
  const uintptr_t page = (reinterpret_cast<uintptr_t>(storage.data()) + 4095) & ~uintptr_t{4095};
  for (size_t dst_off : {size_t{0}, size_t{16}}) {  // the direct and the bounce path
    try {
      m.read_at(4096, {reinterpret_cast<std::byte*>(page + dst_off), 1u << 20});
      FAIL() << "no error";
    } catch (const ckpt::sdk::Error& e) {
      EXPECT_EQ(e.code(), CKPT_ERR_IO);
      EXPECT_NE(std::string(e.what()).find(f.path.string()), std::string::npos) << e.what();
    }
  }
}
