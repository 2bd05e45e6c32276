#include <ckpt_zip/zip_archive.hpp>
#include <ckpt_zip/zip_layout.hpp>

#include <unzip.h>
#include <zlib.h>

#include <cstring>

namespace ckpt_zip {

using ckpt::sdk::fail;

namespace {

// A read-only stream over bytes in memory, for unzOpen2_64.
struct MemoryStream {
  std::span<const std::byte> bytes;
  uint64_t pos = 0;
};

zlib_filefunc64_def memory_functions(MemoryStream* m) {
  zlib_filefunc64_def f{};
  f.opaque = m;
  f.zopen64_file = [](voidpf opaque, const void*, int) -> voidpf { return opaque; };
  f.zread_file = [](voidpf, voidpf stream, void* buf, uLong size) -> uLong {
    auto* s = static_cast<MemoryStream*>(stream);
    const uint64_t left = s->bytes.size() - std::min<uint64_t>(s->pos, s->bytes.size());
    const uint64_t n = std::min<uint64_t>(size, left);
    if (n) std::memcpy(buf, s->bytes.data() + s->pos, n);
    s->pos += n;
    return static_cast<uLong>(n);
  };
  f.zwrite_file = [](voidpf, voidpf, const void*, uLong) -> uLong { return 0; };
  f.ztell64_file = [](voidpf, voidpf stream) -> ZPOS64_T { return static_cast<MemoryStream*>(stream)->pos; };
  f.zseek64_file = [](voidpf, voidpf stream, ZPOS64_T offset, int origin) -> long {
    auto* s = static_cast<MemoryStream*>(stream);
    uint64_t base = origin == ZLIB_FILEFUNC_SEEK_SET ? 0 : origin == ZLIB_FILEFUNC_SEEK_CUR ? s->pos : s->bytes.size();
    if (offset > s->bytes.size() || base > s->bytes.size() - offset) return -1;
    s->pos = base + offset;
    return 0;
  };
  f.zclose_file = [](voidpf, voidpf) -> int { return 0; };
  f.zerror_file = [](voidpf, voidpf) -> int { return 0; };
  return f;
}

struct UnzCloser {
  void operator()(void* z) const { unzClose(z); }
};

}  // namespace

ZipReader::ZipReader(std::span<const std::byte> file, const std::string& path, ZipRules rules) : file_(file), path_(path) {
  MemoryStream mem{file, 0};
  zlib_filefunc64_def funcs = memory_functions(&mem);
  if (rules.allow_empty && file.size() >= 22 && std::memcmp(file.data(), "PK\x05\x06", 4) == 0) {
    check_zip_layout(file, entries_, path, rules);  // exactly an end record of no entries
    return;
  }
  std::unique_ptr<void, UnzCloser> z(unzOpen2_64("memory", &funcs));
  if (!z) fail(CKPT_ERR_FORMAT, "not a zip archive (no valid central directory)");
  for (int rc = unzGoToFirstFile(z.get()); rc != UNZ_END_OF_LIST_OF_FILE; rc = unzGoToNextFile(z.get())) {
    if (rc != UNZ_OK) fail(CKPT_ERR_FORMAT, "a damaged zip central directory (entry " + std::to_string(entries_.size()) + ")");
    unz_file_info64 info{};
    char name[4096];
    if (unzGetCurrentFileInfo64(z.get(), &info, name, sizeof name, nullptr, 0, nullptr, 0) != UNZ_OK)
      fail(CKPT_ERR_FORMAT, "a damaged zip entry " + std::to_string(entries_.size()));
    if (info.size_filename >= sizeof name) fail(CKPT_ERR_LIMIT, "a zip entry name of " + std::to_string(info.size_filename) + " bytes");
    ZipEntry e;
    e.name.assign(name, info.size_filename);
    if (info.flag & 1) fail(CKPT_ERR_UNSUPPORTED, "zip entry '" + e.name + "' is encrypted");
    if (info.compression_method != 0 && info.compression_method != Z_DEFLATED)
      fail(CKPT_ERR_UNSUPPORTED, "zip entry '" + e.name + "' uses compression method " + std::to_string(info.compression_method));
    e.method = static_cast<uint32_t>(info.compression_method);
    e.size = info.uncompressed_size;
    e.compressed_size = info.compressed_size;
    e.crc = static_cast<uint32_t>(info.crc);
    by_name_.try_emplace(e.name, entries_.size());
    entries_.push_back(std::move(e));
  }
  // Checks every local header against its entry and places each entry's data. Not minizip's
  // unzOpenCurrentFile: Debian's minizip refuses a local header whose sizes are 0xffffffff
  // with the real ones in its zip64 field, which is how every entry of 4 GiB or more is written.
  check_zip_layout(file, entries_, path, rules);
  for (const ZipEntry& e : entries_) {
    if (e.method == 0 && e.size != e.compressed_size)
      fail(CKPT_ERR_FORMAT, "stored zip entry '" + e.name + "' has two sizes (" + std::to_string(e.size) + " and " +
                                std::to_string(e.compressed_size) + ")");
    // Deflate expands at most 1032:1; a larger claim is a lie about the size.
    if (e.method != 0 && e.size / 1032 > e.compressed_size + 1)
      fail(CKPT_ERR_FORMAT, "zip entry '" + e.name + "' claims to inflate " + std::to_string(e.compressed_size) +
                                " bytes to " + std::to_string(e.size));
  }
}

const ZipEntry* ZipReader::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

namespace {

uint32_t crc_of(std::span<const std::byte> bytes, uLong crc = crc32(0, nullptr, 0)) {
  for (uint64_t done = 0; done < bytes.size();) {
    const uInt n = static_cast<uInt>(std::min<uint64_t>(bytes.size() - done, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), n);
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

std::span<const std::byte> ZipReader::contents(const ZipEntry& e, std::vector<std::byte>& scratch, bool check_crc) const {
  if (e.method == 0) {
    std::span<const std::byte> raw = file_.subspan(e.data_offset, e.compressed_size);
    if (check_crc && crc_of(raw) != e.crc) fail(CKPT_ERR_INTEGRITY, "zip entry '" + e.name + "' fails its CRC-32 check");
    return raw;
  }
  if (e.size > std::max<uint64_t>(kMaxInflatedRecord, e.compressed_size * 16))
    fail(CKPT_ERR_LIMIT, "zip entry '" + e.name + "' would inflate " + std::to_string(e.compressed_size) + " bytes to " +
                             std::to_string(e.size) + ", more than a record of a torch file may (" +
                             std::to_string(kMaxInflatedRecord) + " bytes or 16 times its stored size)");
  scratch.resize(e.size);
  inflate_range(e, 0, scratch);
  (void)check_crc;  // inflate_range checks the CRC of everything it inflates
  return scratch;
}

void ZipReader::inflate_range(const ZipEntry& e, uint64_t offset, std::span<std::byte> dst) const {
  if (e.method == 0) fail(CKPT_ERR_INTERNAL, "zip entry '" + e.name + "' is stored, not deflated");
  if (offset > e.size || dst.size() > e.size - offset)
    fail(CKPT_ERR_INTERNAL, "zip entry '" + e.name + "': a range past its end");
  const std::span<const std::byte> raw = file_.subspan(e.data_offset, e.compressed_size);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(CKPT_ERR_OUT_OF_MEMORY, "zlib cannot start inflating");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  // The whole entry goes straight into dst; any other range through a window, of which the
  // part inside [offset, offset + dst.size()) is copied out.
  const bool whole = offset == 0 && dst.size() == e.size;
  std::vector<std::byte> window(whole ? 0 : std::min<uint64_t>(e.size, uint64_t{256} << 10));
  uLong crc = crc32(0, nullptr, 0);
  uint64_t in_done = 0, out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    std::byte* out = whole ? dst.data() + out_done : window.data();
    // Never more output room than the declared size leaves: a stream that has more to give
    // inflates past the size it declared.
    const uint64_t room = whole ? e.size - out_done : std::min<uint64_t>(window.size(), e.size - out_done);
    const uInt in_n = static_cast<uInt>(std::min<uint64_t>(raw.size() - in_done, 1u << 30));
    const uInt out_n = static_cast<uInt>(std::min<uint64_t>(room, 1u << 30));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.data() + in_done));
    zs.avail_in = in_n;
    zs.next_out = reinterpret_cast<Bytef*>(out);
    zs.avail_out = out_n;
    rc = inflate(&zs, Z_NO_FLUSH);
    const uint64_t produced = out_n - zs.avail_out;
    in_done += in_n - zs.avail_in;
    if (produced) crc = crc32(crc, reinterpret_cast<const Bytef*>(out), static_cast<uInt>(produced));
    if (!whole) {
      // The overlap of [out_done, out_done + produced) with the wanted range.
      const uint64_t lo = std::max(out_done, offset), hi = std::min(out_done + produced, offset + dst.size());
      if (lo < hi) std::memcpy(dst.data() + (lo - offset), window.data() + (lo - out_done), hi - lo);
    }
    out_done += produced;
    if (rc == Z_OK && out_done == e.size) {
      // Room exhausted at the declared size: the stream must end here.
      zs.next_out = nullptr;
      zs.avail_out = 0;
      std::byte probe[1];
      zs.next_out = reinterpret_cast<Bytef*>(probe);
      zs.avail_out = 1;
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.data() + in_done));
      zs.avail_in = static_cast<uInt>(std::min<uint64_t>(raw.size() - in_done, 1u << 30));
      rc = inflate(&zs, Z_NO_FLUSH);
      if (zs.avail_out == 0)
        fail(CKPT_ERR_FORMAT, "zip entry '" + e.name + "' inflates to more than its declared " + std::to_string(e.size) + " bytes");
      break;
    }
    if (rc == Z_OK && produced == 0 && zs.avail_in == in_n) break;  // no progress
  }
  if (rc != Z_STREAM_END || out_done != e.size)
    fail(CKPT_ERR_FORMAT, "zip entry '" + e.name + "' does not inflate to its declared " + std::to_string(e.size) + " bytes");
  if (static_cast<uint32_t>(crc) != e.crc) fail(CKPT_ERR_INTEGRITY, "zip entry '" + e.name + "' fails its CRC-32 check");
}

void ZipReader::inflate_head(const ZipEntry& e, std::span<std::byte> dst) const {
  if (e.method == 0) fail(CKPT_ERR_INTERNAL, "zip entry '" + e.name + "' is stored, not deflated");
  if (dst.size() > e.size) fail(CKPT_ERR_INTERNAL, "zip entry '" + e.name + "': a head past its end");
  const std::span<const std::byte> raw = file_.subspan(e.data_offset, e.compressed_size);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(CKPT_ERR_OUT_OF_MEMORY, "zlib cannot start inflating");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  uint64_t in_done = 0, out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK && out_done < dst.size()) {
    const uInt in_n = static_cast<uInt>(std::min<uint64_t>(raw.size() - in_done, 1u << 30));
    const uInt out_n = static_cast<uInt>(std::min<uint64_t>(dst.size() - out_done, 1u << 30));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.data() + in_done));
    zs.avail_in = in_n;
    zs.next_out = reinterpret_cast<Bytef*>(dst.data() + out_done);
    zs.avail_out = out_n;
    rc = inflate(&zs, Z_NO_FLUSH);
    const uint64_t produced = out_n - zs.avail_out;
    in_done += in_n - zs.avail_in;
    out_done += produced;
    if (rc == Z_OK && produced == 0 && zs.avail_in == in_n) break;  // no progress
  }
  if (out_done != dst.size())
    fail(CKPT_ERR_FORMAT, "zip entry '" + e.name + "' does not inflate to its declared " + std::to_string(e.size) + " bytes");
}

}  // namespace ckpt_zip
