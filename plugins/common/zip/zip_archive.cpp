#include <ckpt_zip/zip_archive.hpp>
#include <ckpt_zip/zip_layout.hpp>

#include <libdeflate.h>
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

// Code page 437's upper half (0x80-0xff) as Python's codec maps it; the lower half is ASCII.
constexpr uint16_t kCp437[128] = {
    0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, 0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
    0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9, 0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
    0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba, 0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
    0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f, 0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
    0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4, 0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
    0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248, 0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0};

std::string cp437_to_utf8(const std::string& raw) {
  std::string out;
  out.reserve(raw.size() * 3);
  for (char ch : raw) {
    const auto b = static_cast<unsigned char>(ch);
    const uint32_t c = b < 0x80 ? b : kCp437[b - 0x80];
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t c, min;
    if ((b & 0xe0) == 0xc0) n = 1, c = b & 0x1f, min = 0x80;
    else if ((b & 0xf0) == 0xe0) n = 2, c = b & 0x0f, min = 0x800;
    else if ((b & 0xf8) == 0xf0) n = 3, c = b & 0x07, min = 0x10000;
    else return false;
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto t = static_cast<unsigned char>(s[i + k]);
      if ((t & 0xc0) != 0x80) return false;
      c = (c << 6) | (t & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

std::string printable_name(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    if (b < 0x80) {
      out += ch;
    } else {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    }
  }
  return out;
}

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
    e.flags = static_cast<uint32_t>(info.flag);
    entries_.push_back(std::move(e));
  }
  // Checks every local header against its entry and places each entry's data. Not minizip's
  // unzOpenCurrentFile: Debian's minizip refuses a local header whose sizes are 0xffffffff
  // with the real ones in its zip64 field, which is how every entry of 4 GiB or more is written.
  check_zip_layout(file, entries_, path, rules);
  if (rules.python_names) {
    // Python's zipfile: bit 11 set, the name is UTF-8 (strictly: it fails on anything else);
    // clear, it is code page 437. Decoded here, so the names are numpy.load's keys.
    for (ZipEntry& e : entries_) {
      if (e.flags & 0x800) {
        if (!valid_utf8(e.name))
          fail(CKPT_ERR_FORMAT, "zip entry '" + printable_name(e.name) +
                                    "' is flagged as a UTF-8 name (general purpose bit 11) but is not valid UTF-8 "
                                    "(Python's zipfile cannot open the archive)");
      } else {
        e.name = cp437_to_utf8(e.name);
      }
    }
  }
  for (size_t i = 0; i < entries_.size(); ++i)
    if (!by_name_.try_emplace(entries_[i].name, i).second)
      // Only decoding makes two names equal (the layout check refused equal raw names): a
      // UTF-8 name and a code page 437 one that read as the same text.
      fail(CKPT_ERR_FORMAT, "two zip entries named '" + entries_[i].name +
                                "' once decoded (one flagged UTF-8, one in code page 437; readers differ on which counts)");
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

// libdeflate's CRC-32 (carry-less multiply where the CPU has it): the same value as zlib's.
uint32_t crc_of(std::span<const std::byte> bytes) {
  return static_cast<uint32_t>(libdeflate_crc32(0, bytes.data(), bytes.size()));
}

std::string hex32(uint32_t v) {
  static const char* hex = "0123456789abcdef";
  std::string s = "0x";
  for (int k = 28; k >= 0; k -= 4) s += hex[(v >> k) & 15];
  return s;
}

}  // namespace

void ZipReader::check_stored_crc(const ZipEntry& e) const {
  if (e.method != 0) fail(CKPT_ERR_INTERNAL, "zip entry '" + e.name + "' is deflated, not stored");
  const uint32_t got = crc_of(file_.subspan(e.data_offset, e.compressed_size));
  if (got != e.crc)
    fail(CKPT_ERR_INTEGRITY, "zip entry '" + e.name + "' fails its CRC-32 check (the archive records " + hex32(e.crc) +
                                 ", its " + std::to_string(e.compressed_size) + " bytes give " + hex32(got) +
                                 "): the data is damaged");
}

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
