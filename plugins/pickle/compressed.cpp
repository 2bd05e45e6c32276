#include "compressed.hpp"

#include <ckpt/sdk.hpp>

#include <bzlib.h>
#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>

namespace ckpt_pickle {

using ckpt::sdk::fail;

const char* container_name(Container c) {
  switch (c) {
    case Container::zlib: return "zlib";
    case Container::gzip: return "gzip";
    case Container::bz2: return "bz2";
    case Container::xz: return "xz";
    case Container::lzma: return "lzma";
    case Container::none: break;
  }
  return "none";
}

Container container_of(std::span<const uint8_t> h) {
  auto starts = [&](std::initializer_list<uint8_t> m) {
    return h.size() >= m.size() && std::equal(m.begin(), m.end(), h.begin());
  };
  // zlib: deflate (CM 8) with a window of at most 32 KiB, and a header check that holds.
  if (h.size() >= 2 && (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && ((h[0] << 8) | h[1]) % 31 == 0) return Container::zlib;
  if (starts({0x1f, 0x8b, 0x08})) return Container::gzip;
  if (starts({'B', 'Z', 'h'})) return Container::bz2;
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return Container::xz;
  if (starts({0x5d, 0x00, 0x00})) return Container::lzma;  // LZMA "alone": lc=3 lp=0 pb=2, as Python writes it
  return Container::none;
}

namespace {

// Feeds `in` to `step` (which decompresses into the window it is given and says how much input
// it took and output it made, and whether the stream ended) until the stream ends.
struct Step {
  size_t consumed = 0, produced = 0;
  bool ended = false;
};

// Decompresses `in` through `step` into `out` (when it is given) or only counts the bytes (when
// it is not); returns the count. Never holds more than `max_out` bytes.
uint64_t run(std::span<const std::byte> in, uint64_t max_out, Container c, std::span<std::byte> out,
             const std::function<Step(std::span<const std::byte>, std::span<std::byte>)>& step) {
  std::vector<std::byte> scratch(out.empty() ? size_t{1} << 20 : 0);
  uint64_t made = 0;
  size_t at = 0;
  for (;;) {
    std::span<std::byte> window;
    if (!out.empty()) window = out.subspan(made);
    else window = std::span(scratch.data(), static_cast<size_t>(std::min<uint64_t>(scratch.size(), max_out - made)));
    std::byte probe[1];
    // At the bound, one more byte decides: a stream that ends exactly there is fine.
    if (window.empty()) window = std::span(probe, 1);
    const Step s = step(in.subspan(at), window);
    if (window.data() == probe && s.produced > 0)
      fail(CKPT_ERR_LIMIT, std::string("its ") + container_name(c) + " stream decompresses to more than " + std::to_string(max_out) +
                               " bytes (by default " + std::to_string(kMaxCompressionRatio) +
                               " times the file plus 32 MiB; -r max_decompressed=BYTES for a file you trust)");
    if (window.data() != probe) made += s.produced;
    at += s.consumed;
    if (s.ended) {
      if (at != in.size())
        fail(CKPT_ERR_FORMAT, std::to_string(in.size() - at) + " bytes after the end of its " + container_name(c) +
                                  " stream (at byte " + std::to_string(at) + ")");
      return made;
    }
    if (s.consumed == 0 && s.produced == 0)
      fail(CKPT_ERR_FORMAT, std::string("its ") + container_name(c) + " stream ends early (at byte " + std::to_string(at) +
                                " of " + std::to_string(in.size()) + "): the file is cut short");
  }
}

uint64_t decoder_memory(uint64_t max_out) {
  return std::clamp<uint64_t>(max_out / 2, uint64_t{1} << 20, uint64_t{256} << 20);
}

[[noreturn]] void damaged(Container c, const std::string& why) {
  fail(CKPT_ERR_FORMAT, std::string("its ") + container_name(c) + " stream is damaged: " + why);
}

uint64_t inflate_all(std::span<const std::byte> in, uint64_t max_out, Container c, std::span<std::byte> out) {
  z_stream z{};
  if (inflateInit2(&z, c == Container::gzip ? 15 + 16 : 15) != Z_OK) fail(CKPT_ERR_INTERNAL, "zlib: inflateInit2 failed");
  struct End {
    z_stream& z;
    ~End() { inflateEnd(&z); }
  } end{z};
  return run(in, max_out, c, out, [&](std::span<const std::byte> src, std::span<std::byte> dst) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(src.data()));
    z.avail_in = static_cast<uInt>(std::min<size_t>(src.size(), UINT_MAX));
    z.next_out = reinterpret_cast<Bytef*>(dst.data());
    z.avail_out = static_cast<uInt>(std::min<size_t>(dst.size(), UINT_MAX));
    const uInt in0 = z.avail_in, out0 = z.avail_out;
    const int r = inflate(&z, Z_NO_FLUSH);
    if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) damaged(c, z.msg ? z.msg : "inflate failed");
    return Step{in0 - z.avail_in, out0 - z.avail_out, r == Z_STREAM_END};
  });
}

uint64_t bunzip_all(std::span<const std::byte> in, uint64_t max_out, std::span<std::byte> out) {
  bz_stream z{};
  if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) fail(CKPT_ERR_INTERNAL, "bzip2: BZ2_bzDecompressInit failed");
  struct End {
    bz_stream& z;
    ~End() { BZ2_bzDecompressEnd(&z); }
  } end{z};
  return run(in, max_out, Container::bz2, out, [&](std::span<const std::byte> src, std::span<std::byte> dst) {
    z.next_in = reinterpret_cast<char*>(const_cast<std::byte*>(src.data()));
    z.avail_in = static_cast<unsigned>(std::min<size_t>(src.size(), UINT_MAX));
    z.next_out = reinterpret_cast<char*>(dst.data());
    z.avail_out = static_cast<unsigned>(std::min<size_t>(dst.size(), UINT_MAX));
    const unsigned in0 = z.avail_in, out0 = z.avail_out;
    const int r = BZ2_bzDecompress(&z);
    if (r != BZ_OK && r != BZ_STREAM_END) damaged(Container::bz2, "bzip2 error " + std::to_string(r));
    return Step{in0 - z.avail_in, out0 - z.avail_out, r == BZ_STREAM_END};
  });
}

uint64_t unxz_all(std::span<const std::byte> in, uint64_t max_out, Container c, std::span<std::byte> out) {
  lzma_stream z = LZMA_STREAM_INIT;
  // The decoder's own memory is bounded too, by half of what the output may be: a header of a
  // few bytes may ask for a dictionary of 4 GiB.
  const uint64_t memlimit = decoder_memory(max_out);
  const lzma_ret init = c == Container::xz ? lzma_stream_decoder(&z, memlimit, 0) : lzma_alone_decoder(&z, memlimit);
  if (init != LZMA_OK) fail(CKPT_ERR_INTERNAL, "liblzma: decoder init failed");
  struct End {
    lzma_stream& z;
    ~End() { lzma_end(&z); }
  } end{z};
  return run(in, max_out, c, out, [&](std::span<const std::byte> src, std::span<std::byte> dst) {
    z.next_in = reinterpret_cast<const uint8_t*>(src.data());
    z.avail_in = src.size();
    z.next_out = reinterpret_cast<uint8_t*>(dst.data());
    z.avail_out = dst.size();
    const size_t in0 = z.avail_in, out0 = z.avail_out;
    const lzma_ret r = lzma_code(&z, src.empty() ? LZMA_FINISH : LZMA_RUN);
    if (r == LZMA_MEMLIMIT_ERROR)
      fail(CKPT_ERR_LIMIT, std::string("its ") + container_name(c) + " stream asks for more than " + std::to_string(memlimit) +
                               " bytes of decoder memory (half the bound on its output; -r max_decompressed=BYTES)");
    if (r != LZMA_OK && r != LZMA_STREAM_END && r != LZMA_BUF_ERROR) damaged(c, "liblzma error " + std::to_string(r));
    return Step{in0 - z.avail_in, out0 - z.avail_out, r == LZMA_STREAM_END};
  });
}

}  // namespace

std::vector<std::byte> decompress(Container c, std::span<const std::byte> in, uint64_t max_out) {
  // Twice: once to count, once into a buffer of exactly that size. The second pass costs CPU
  // only, where growing a buffer would hold up to twice the bound at once.
  auto pass = [&](std::span<std::byte> out) -> uint64_t {
    switch (c) {
      case Container::zlib:
      case Container::gzip: return inflate_all(in, max_out, c, out);
      case Container::bz2: return bunzip_all(in, max_out, out);
      case Container::xz:
      case Container::lzma: return unxz_all(in, max_out, c, out);
      case Container::none: break;
    }
    return 0;
  };
  if (c == Container::none) return {in.begin(), in.end()};
  const uint64_t n = pass({});
  std::vector<std::byte> out(static_cast<size_t>(n));
  if (n == 0) return out;
  if (pass(out) != n) fail(CKPT_ERR_INTERNAL, std::string("its ") + container_name(c) + " stream decompressed differently twice");
  return out;
}

bool starts_a_pickle(Container c, std::span<const uint8_t> head) {
  if (c == Container::none) return false;
  // The first bytes only: a head cut anywhere is no damage here, so the stream's end and what
  // follows it do not matter; a stream that cannot start is not one of joblib's.
  switch (c) {
      case Container::zlib:
      case Container::gzip: {
        z_stream z{};
        if (inflateInit2(&z, c == Container::gzip ? 31 : 15) != Z_OK) return false;
        uint8_t out[2];
        z.next_in = const_cast<Bytef*>(head.data());
        z.avail_in = static_cast<uInt>(head.size());
        z.next_out = out;
        z.avail_out = 2;
        const int r = inflate(&z, Z_SYNC_FLUSH);
        const bool ok = (r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR) && z.avail_out == 0;
        inflateEnd(&z);
        return ok && out[0] == 0x80 && out[1] >= 2 && out[1] <= 5;
      }
      case Container::bz2: {
        bz_stream z{};
        if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) return false;
        char out[2];
        z.next_in = const_cast<char*>(reinterpret_cast<const char*>(head.data()));
        z.avail_in = static_cast<unsigned>(head.size());
        z.next_out = out;
        z.avail_out = 2;
        const int r = BZ2_bzDecompress(&z);
        BZ2_bzDecompressEnd(&z);
        // bzip2 emits nothing before its first block (up to 900 KB) is in: a head cannot show
        // the pickle, so the magic decides, as for any bz2 file.
        if (r != BZ_OK && r != BZ_STREAM_END) return false;
        return z.avail_out == 2 || (static_cast<uint8_t>(out[0]) == 0x80 && out[1] >= 2 && out[1] <= 5);
      }
      case Container::xz:
      case Container::lzma: {
        // Identifying a file allocates no dictionary: a header asking for more than 16 MiB is
        // taken at its magic, and the reader then applies its own bound.
        lzma_stream z = LZMA_STREAM_INIT;
        const uint64_t memlimit = uint64_t{16} << 20;
        if ((c == Container::xz ? lzma_stream_decoder(&z, memlimit, 0) : lzma_alone_decoder(&z, memlimit)) != LZMA_OK)
          return false;
        uint8_t out[2];
        z.next_in = head.data();
        z.avail_in = head.size();
        z.next_out = out;
        z.avail_out = 2;
        const lzma_ret r = lzma_code(&z, LZMA_RUN);
        lzma_end(&z);
        if (r == LZMA_MEMLIMIT_ERROR) return true;
        if (r != LZMA_OK && r != LZMA_STREAM_END) return false;
        return z.avail_out == 0 && out[0] == 0x80 && out[1] >= 2 && out[1] <= 5;
      }
      case Container::none: break;
  }
  return false;
}

}  // namespace ckpt_pickle
