#include <ckpt_zip/zip_writer.hpp>

#include <ckpt/sdk.hpp>
#include <ckpt_zip/zip_archive.hpp>

#include <libdeflate.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace ckpt_zip {

using ckpt::sdk::fail;

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEnd = 0x06054b50,
                   kZip64End = 0x06064b50, kZip64Locator = 0x07064b50;
constexpr uint16_t kZip64Field = 0x0001, kPaddingField = 0x4246;  // "FB", torch's padding id
constexpr uint16_t kVersionClassic = 20, kVersionZip64 = 45;
constexpr uint16_t kDosDate = 0x0021;  // 1980-01-01, 00:00: the same document gives the same bytes
constexpr uint32_t k32 = 0xffffffffu;
constexpr uint16_t k16 = 0xffffu;
// Writes of at least this size skip the buffer and go from the caller's memory to the file.
constexpr size_t kDirect = size_t{256} << 10;
constexpr size_t kBuffer = size_t{1} << 20;

// Little-endian fields, appended to a header being built.
struct Bytes {
  std::vector<std::byte> b;
  Bytes& u16(uint64_t v) { return put(v, 2); }
  Bytes& u32(uint64_t v) { return put(v, 4); }
  Bytes& u64(uint64_t v) { return put(v, 8); }
  Bytes& text(const std::string& s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    b.insert(b.end(), p, p + s.size());
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.insert(b.end(), n, std::byte{0});
    return *this;
  }
  Bytes& put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    return *this;
  }
};

}  // namespace

ZipWriter::ZipWriter(const std::string& path, bool always_zip64, bool utf8_flag)
    : path_(path), always_zip64_(always_zip64), utf8_flag_(utf8_flag) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(CKPT_ERR_IO, "cannot create '" + path + "': " + std::strerror(errno));
  buf_.reserve(kBuffer);
}

ZipWriter::~ZipWriter() {
  if (fd_ >= 0) ::close(fd_);  // unfinished: the host removes the temporary
}

void ZipWriter::write_all(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), std::min<size_t>(bytes.size(), size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(CKPT_ERR_IO, "cannot write '" + path_ + "': " + std::strerror(n < 0 ? errno : EIO));
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

void ZipWriter::flush() {
  write_all(buf_);
  buf_.clear();
}

void ZipWriter::append(std::span<const std::byte> bytes) {
  if (bytes.size() >= kDirect) {
    flush();
    write_all(bytes);
  } else {
    if (buf_.size() + bytes.size() > kBuffer) flush();
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  }
  offset_ += bytes.size();
}

void ZipWriter::read_back(uint64_t offset, std::span<std::byte> dst) {
  flush();
  for (size_t done = 0; done < dst.size();) {
    const ssize_t n = ::pread(fd_, dst.data() + done, dst.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(CKPT_ERR_IO, "cannot read back '" + path_ + "': " + std::strerror(n < 0 ? errno : EIO));
    done += static_cast<size_t>(n);
  }
}

uint64_t ZipWriter::add(const std::string& name, std::span<const std::byte> data) {
  const std::span<const std::byte> parts[1] = {data};
  return add(name, parts);
}

uint64_t ZipWriter::add(const std::string& name, std::span<const std::span<const std::byte>> parts) {
  uint64_t size = 0;
  uint32_t crc = 0;
  for (const auto& p : parts) {
    crc = static_cast<uint32_t>(libdeflate_crc32(crc, p.data(), p.size()));
    size += p.size();
  }
  return add_entry(name, 0, parts, size, crc);
}

uint64_t ZipWriter::add_deflated(const std::string& name, std::span<const std::byte> compressed, uint64_t size, uint32_t crc) {
  const std::span<const std::byte> parts[1] = {compressed};
  return add_entry(name, 8, parts, size, crc);
}

uint64_t ZipWriter::add_entry(const std::string& name, uint16_t method, std::span<const std::span<const std::byte>> parts,
                              uint64_t size, uint32_t crc) {
  if (fd_ < 0) fail(CKPT_ERR_INTERNAL, "zip entry '" + name + "' added after close");
  if (name.size() >= k16) fail(CKPT_ERR_UNSUPPORTED, "a zip entry name of " + std::to_string(name.size()) + " bytes");
  uint64_t csize = 0;
  for (const auto& p : parts) csize += p.size();
  const bool zip64 = always_zip64_ || size >= k32 || csize >= k32;
  bool ascii = true;
  for (char ch : name) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  // A name flagged UTF-8 must be UTF-8: Python's zipfile decodes it strictly and cannot open an
  // archive holding one that is not.
  if (utf8_flag_ && !ascii && !valid_utf8(name))
    fail(CKPT_ERR_UNSUPPORTED, "zip entry '" + printable_name(name) +
                                   "': the name is not valid UTF-8, which a zip read by Python's zipfile needs");
  const uint16_t flags = utf8_flag_ && !ascii ? 0x0800 : 0;
  // The padding field fills the local header up to the next multiple of 64.
  const uint64_t fixed = 30 + name.size() + (zip64 ? 20 : 0) + 4;
  const uint64_t pad = (kAlignment - (offset_ + fixed) % kAlignment) % kAlignment;
  Bytes h;
  h.u32(kLocalHeader).u16(zip64 ? kVersionZip64 : kVersionClassic).u16(flags).u16(method).u16(0).u16(kDosDate).u32(crc);
  h.u32(zip64 ? k32 : csize).u32(zip64 ? k32 : size).u16(name.size()).u16(fixed - 30 - name.size() + pad).text(name);
  if (zip64) h.u16(kZip64Field).u16(16).u64(size).u64(csize);
  h.u16(kPaddingField).u16(pad).zeros(pad);
  entries_.push_back({name, offset_, size, crc, csize, method, flags});
  append(h.b);
  const uint64_t at = offset_;
  for (const auto& p : parts) append(p);
  return at;
}

void ZipWriter::close() {
  const uint64_t directory = offset_;
  for (const Entry& e : entries_) {
    const bool big_size = always_zip64_ || e.size >= k32 || e.csize >= k32, big_offset = always_zip64_ || e.offset >= k32;
    Bytes extra;
    if (big_size || big_offset) {
      extra.u16(kZip64Field).u16((big_size ? 16 : 0) + (big_offset ? 8 : 0));
      if (big_size) extra.u64(e.size).u64(e.csize);
      if (big_offset) extra.u64(e.offset);
    }
    const uint16_t version = extra.b.empty() ? kVersionClassic : kVersionZip64;
    Bytes c;
    c.u32(kCentralHeader).u16(version).u16(version).u16(e.flags).u16(e.method).u16(0).u16(kDosDate).u32(e.crc);
    c.u32(big_size ? k32 : e.csize).u32(big_size ? k32 : e.size).u16(e.name.size()).u16(extra.b.size());
    c.u16(0).u16(0).u16(0).u32(0).u32(big_offset ? k32 : e.offset).text(e.name);
    append(c.b);
    append(extra.b);
  }
  const uint64_t size = offset_ - directory, count = entries_.size();
  const bool zip64 = always_zip64_ || count >= k16 || size >= k32 || directory >= k32;
  Bytes end;
  if (zip64) {
    const uint64_t record = offset_;
    end.u32(kZip64End).u64(44).u16(kVersionZip64).u16(kVersionZip64).u32(0).u32(0);
    end.u64(count).u64(count).u64(size).u64(directory);
    end.u32(kZip64Locator).u32(0).u64(record).u32(1);
  }
  end.u32(kEnd).u16(0).u16(0).u16(zip64 ? k16 : count).u16(zip64 ? k16 : count);
  end.u32(zip64 ? k32 : size).u32(zip64 ? k32 : directory).u16(0);
  append(end.b);
  flush();
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(CKPT_ERR_IO, "cannot close '" + path_ + "': " + std::strerror(errno));
}

}  // namespace ckpt_zip
