#include <ckpt_zip/zip_layout.hpp>

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace ckpt_zip {

using ckpt::sdk::fail;

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50, kDescriptorSig = 0x08074b50;

class Bytes {
 public:
  explicit Bytes(std::span<const std::byte> file) : f_(file) {}
  uint64_t size() const { return f_.size(); }
  void need(uint64_t at, uint64_t n, const char* what) const {
    if (at > f_.size() || n > f_.size() - at)
      bad(at, std::string(what) + " runs past the end of the file (" + std::to_string(f_.size()) + " bytes)");
  }
  uint64_t le(uint64_t at, int n, const char* what) const {
    need(at, static_cast<uint64_t>(n), what);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(f_[at + static_cast<uint64_t>(k)]);
    return v;
  }
  std::string_view text(uint64_t at, uint64_t n, const char* what) const {
    need(at, n, what);
    return {reinterpret_cast<const char*>(f_.data() + at), n};
  }
  [[noreturn]] void bad(uint64_t at, const std::string& what) const {
    // The host names the file before every message of a reader.
    fail(CKPT_ERR_FORMAT, "not a zip archive with one reading: at byte " + std::to_string(at) + ", " + what);
  }

 private:
  std::span<const std::byte> f_;
};

struct Raw {
  std::string name;
  uint32_t flags = 0, method = 0, crc = 0;
  uint64_t csize = 0, usize = 0, local = 0;
  bool zip64 = false;
  uint64_t central_at = 0;
};

// Sizes and offset that the zip64 extra field (id 1) replaces, in its fixed order.
void zip64_extra(const Bytes& b, uint64_t at, uint64_t len, Raw& r, bool want_usize, bool want_csize, bool want_local) {
  for (uint64_t p = at; p + 4 <= at + len;) {
    const uint64_t id = b.le(p, 2, "an extra field"), n = b.le(p + 2, 2, "an extra field");
    if (p + 4 + n > at + len) b.bad(p, "an extra field longer than the extra area");
    if (id == 1) {
      uint64_t q = p + 4;
      auto take = [&](bool want, uint64_t& v) {
        if (!want) return;
        if (q + 8 > p + 4 + n) b.bad(p, "a zip64 extra field too short for the sizes it replaces");
        v = b.le(q, 8, "a zip64 field");
        q += 8;
      };
      take(want_usize, r.usize);
      take(want_csize, r.csize);
      take(want_local, r.local);
      r.zip64 = true;
      return;
    }
    p += 4 + n;
  }
  if (want_usize || want_csize || want_local) b.bad(at, "sizes of 0xffffffff without a zip64 extra field");
}

}  // namespace

void check_zip_layout(std::span<const std::byte> file, std::vector<ZipEntry>& listed, const std::string& path, ZipRules rules) {
  (void)path;  // the host names the file
  const Bytes b(file);
  // The end record has a comment of its own length, so it ends exactly at the end of the file.
  uint64_t end_at = UINT64_MAX;
  if (b.size() < 22) b.bad(0, "too short for an end of central directory record");
  for (uint64_t comment = 0; comment <= 0xffff && comment + 22 <= b.size(); ++comment) {
    const uint64_t at = b.size() - 22 - comment;
    if (b.le(at, 4, "the end record") == kEndSig && b.le(at + 20, 2, "the end record") == comment) {
      end_at = at;
      break;
    }
  }
  if (end_at == UINT64_MAX) b.bad(b.size(), "no end of central directory record ending the file (bytes appended?)");
  if (b.le(end_at + 4, 2, "the end record") != 0 || b.le(end_at + 6, 2, "the end record") != 0)
    b.bad(end_at, "a multi-disk archive");
  uint64_t count = b.le(end_at + 10, 2, "the end record");
  if (b.le(end_at + 8, 2, "the end record") != count) b.bad(end_at, "two different entry counts");
  uint64_t cd_size = b.le(end_at + 12, 4, "the end record"), cd_at = b.le(end_at + 16, 4, "the end record");
  uint64_t cd_end = end_at;  // where the central directory must end
  if (end_at >= 20 && b.le(end_at - 20, 4, "a zip64 locator") == kZip64LocatorSig) {
    const uint64_t rec = b.le(end_at - 20 + 8, 8, "the zip64 locator");
    if (b.le(rec, 4, "the zip64 end record") != kZip64EndSig) b.bad(rec, "the zip64 locator points at no zip64 end record");
    const uint64_t rec_size = b.le(rec + 4, 8, "the zip64 end record");
    if (rec_size < 44 || rec + 12 + rec_size != end_at - 20)
      b.bad(rec, "the zip64 end record does not end where its locator begins");
    const uint64_t n64 = b.le(rec + 24, 8, "the zip64 end record");
    if (b.le(rec + 32, 8, "the zip64 end record") != n64) b.bad(rec, "two different entry counts");
    if (count != 0xffff && count != n64) b.bad(rec, "the zip64 and classic entry counts disagree");
    count = n64;
    cd_size = b.le(rec + 40, 8, "the zip64 end record");
    cd_at = b.le(rec + 48, 8, "the zip64 end record");
    cd_end = rec;
  }
  if (cd_at > cd_end || cd_size != cd_end - cd_at)
    b.bad(cd_at, "the central directory (" + std::to_string(cd_size) + " bytes) does not end where the end records begin");
  if (count != listed.size())
    b.bad(cd_at, std::to_string(count) + " entries recorded, " + std::to_string(listed.size()) + " listed");

  std::vector<Raw> raws;
  raws.reserve(count);
  uint64_t p = cd_at;
  for (uint64_t i = 0; i < count; ++i) {
    Raw r;
    r.central_at = p;
    if (b.le(p, 4, "a central directory entry") != kCentralSig) b.bad(p, "expected central directory entry " + std::to_string(i));
    r.flags = static_cast<uint32_t>(b.le(p + 8, 2, "a central entry"));
    r.method = static_cast<uint32_t>(b.le(p + 10, 2, "a central entry"));
    r.crc = static_cast<uint32_t>(b.le(p + 16, 4, "a central entry"));
    r.csize = b.le(p + 20, 4, "a central entry");
    r.usize = b.le(p + 24, 4, "a central entry");
    const uint64_t name_len = b.le(p + 28, 2, "a central entry"), extra_len = b.le(p + 30, 2, "a central entry"),
                   comment_len = b.le(p + 32, 2, "a central entry");
    if (b.le(p + 34, 2, "a central entry") != 0) b.bad(p, "an entry on another disk");
    r.local = b.le(p + 42, 4, "a central entry");
    r.name = std::string(b.text(p + 46, name_len, "an entry name"));
    zip64_extra(b, p + 46 + name_len, extra_len, r, r.usize == 0xffffffff, r.csize == 0xffffffff, r.local == 0xffffffff);
    p += 46 + name_len + extra_len + comment_len;
    if (p > cd_end) b.bad(r.central_at, "a central directory entry past the directory's end");
    raws.push_back(std::move(r));
  }
  if (p != cd_end) b.bad(p, std::to_string(cd_end - p) + " bytes inside the central directory belong to no entry");

  // Names: one reading each, all inside the folder of the first. torch's miniz looks names up
  // ignoring case, so names that differ only in case are the same name to it.
  auto folded = [&rules](std::string s) {
    if (!rules.fold_case) return s;
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
  };
  std::unordered_set<std::string> names;
  std::string prefix;
  for (size_t i = 0; i < raws.size(); ++i) {
    const Raw& r = raws[i];
    if (!names.insert(folded(r.name)).second)
      b.bad(r.central_at, "a second entry named '" + r.name + (rules.fold_case ? "', ignoring case" : "'") +
                              " (readers differ on which one counts)");
    if (r.name.find('\0') != std::string::npos) b.bad(r.central_at, "an entry name holding a NUL byte");
    if (!rules.one_folder) {
      // no folder rule
    } else if (i == 0) {
      const size_t slash = r.name.find('/');
      if (slash == std::string::npos || slash == 0) b.bad(r.central_at, "entry '" + r.name + "' is not inside an archive folder");
      prefix = r.name.substr(0, slash + 1);
    } else if (r.name.compare(0, prefix.size(), prefix) != 0) {
      b.bad(r.central_at, "entry '" + r.name + "' lies outside the archive folder '" + prefix + "'");
    }
    ZipEntry& e = listed[i];
    // Debian's minizip compares the zip64 sentinel with (unsigned long)-1, which is 2^64-1 on
    // LP64, so it never takes sizes from a zip64 field: it lists 0xffffffff, and an entry of
    // 4 GiB or more (torch writes them so) would read as 4 GiB. The field gives them here.
    if (r.zip64) {
      if (e.size == 0xffffffff) e.size = r.usize;
      if (e.compressed_size == 0xffffffff) e.compressed_size = r.csize;
    }
    if (e.name != r.name || e.size != r.usize || e.compressed_size != r.csize || e.crc != r.crc || e.method != r.method)
      b.bad(r.central_at, "entry " + std::to_string(i) + " ('" + r.name + "') reads differently to minizip");
  }

  // Entries tile the file from its first byte to the central directory, in order.
  std::vector<const Raw*> order;
  for (const Raw& r : raws) order.push_back(&r);
  std::sort(order.begin(), order.end(), [](const Raw* x, const Raw* y) { return x->local < y->local; });
  uint64_t next = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Raw& r = *order[i];
    if (r.local != next)
      b.bad(next, r.local < next ? "entry '" + r.name + "' overlaps the one before it (shared bytes)"
                                 : std::to_string(r.local - next) + " bytes before entry '" + r.name + "' belong to no entry");
    const uint64_t at = r.local;
    if (b.le(at, 4, "a local header") != kLocalSig) b.bad(at, "expected the local header of '" + r.name + "'");
    const uint32_t flags = static_cast<uint32_t>(b.le(at + 6, 2, "a local header"));
    const uint32_t method = static_cast<uint32_t>(b.le(at + 8, 2, "a local header"));
    const uint64_t name_len = b.le(at + 26, 2, "a local header"), extra_len = b.le(at + 28, 2, "a local header");
    if (b.text(at + 30, name_len, "a local name") != r.name)
      b.bad(at, "the local header names '" + std::string(b.text(at + 30, name_len, "a local name")) + "', the directory '" + r.name + "'");
    if (flags != r.flags || method != r.method) b.bad(at, "the local header of '" + r.name + "' disagrees with the directory on its flags or method");
    const bool deferred = flags & 8;
    Raw local;
    local.crc = static_cast<uint32_t>(b.le(at + 14, 4, "a local header"));
    local.csize = b.le(at + 18, 4, "a local header");
    local.usize = b.le(at + 22, 4, "a local header");
    if (!deferred || local.csize == 0xffffffff || local.usize == 0xffffffff)
      zip64_extra(b, at + 30 + name_len, extra_len, local, local.usize == 0xffffffff, local.csize == 0xffffffff, false);
    if (!deferred && (local.crc != r.crc || local.csize != r.csize || local.usize != r.usize))
      b.bad(at, "the local header of '" + r.name + "' disagrees with the directory on its CRC or sizes");
    const uint64_t data = at + 30 + name_len + extra_len;
    b.need(data, r.csize, "an entry's data");
    listed[static_cast<size_t>(&r - raws.data())].data_offset = data;
    next = data + r.csize;
    if (deferred) {
      // The data descriptor: an optional signature, the CRC, then both sizes (8 bytes each for
      // zip64 entries).
      uint64_t d = next;
      if (b.le(d, 4, "a data descriptor") == kDescriptorSig) d += 4;
      const int w = r.zip64 || local.zip64 ? 8 : 4;
      if (b.le(d, 4, "a data descriptor") != r.crc || b.le(d + 4, w, "a data descriptor") != r.csize ||
          b.le(d + 4 + static_cast<uint64_t>(w), w, "a data descriptor") != r.usize)
        b.bad(d, "the data descriptor of '" + r.name + "' disagrees with the directory");
      next = d + 4 + 2 * static_cast<uint64_t>(w);
    }
  }
  if (next != cd_at)
    b.bad(next, next < cd_at ? std::to_string(cd_at - next) + " bytes before the central directory belong to no entry"
                             : "the last entry runs into the central directory");
}

}  // namespace ckpt_zip
