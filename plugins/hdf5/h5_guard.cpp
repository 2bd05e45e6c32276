#include "h5_guard.hpp"
#include "h5_workarounds.hpp"

#include <ckpt/sdk_io.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

uint64_t le(const uint8_t* p, unsigned n) { return little_endian(p, n); }

bool is_undefined(uint64_t v, unsigned n) {
  return n == 8 ? v == ~uint64_t(0) : v == (uint64_t(1) << (8 * n)) - 1;
}

void read_at(int fd, void* buf, size_t n, uint64_t at, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(at + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot read", path));
    if (got == 0) fail(CKPT_ERR_FORMAT, "unexpected end of file at byte " + std::to_string(at + done));
    done += static_cast<size_t>(got);
  }
}


// ---- raw variable-length references ------------------------------------------------------------

// libhdf5 offers no call that returns a variable-length attribute's stored references, but it
// converts through any registered function: this one "converts" a variable-length type into an
// opaque type of the same (on-disk) size by leaving the bytes as they are.
constexpr const char* kRawTag = "ckpt.vlen-descriptors";
constexpr const char* kRawConversion = "ckpt_vlen_descriptors";

herr_t keep_descriptors(hid_t src, hid_t dst, H5T_cdata_t* cdata, size_t, size_t, size_t, void*,
                        void*, hid_t) {
  if (cdata->command != H5T_CONV_INIT) return 0;  // CONV leaves the bytes; FREE has nothing
  if (H5Tget_class(dst) != H5T_OPAQUE || H5Tget_size(src) != H5Tget_size(dst)) return -1;
  char* tag = H5Tget_tag(dst);
  const bool ours = tag && std::strcmp(tag, kRawTag) == 0;
  if (tag) H5free_memory(tag);
  if (!ours) return -1;
  cdata->need_bkg = H5T_BKG_NO;
  return 0;
}

// Registered on first use and removed when the plugin unloads (the function lives in it, and
// libhdf5 stays loaded).
struct Registration {
  bool ok = false;
  Registration() {
    hid_t sample = H5Tvlen_create(H5T_NATIVE_UCHAR);
    hid_t opaque = H5Tcreate(H5T_OPAQUE, 1);
    ok = sample >= 0 && opaque >= 0 &&
         H5Tregister(H5T_PERS_SOFT, kRawConversion, sample, opaque, keep_descriptors) >= 0;
    if (sample >= 0) H5Tclose(sample);
    if (opaque >= 0) H5Tclose(opaque);
    if (!ok) H5Eclear2(H5E_DEFAULT);
  }
  ~Registration() {
    Lock lock;
    if (ok) H5Tunregister(H5T_PERS_SOFT, kRawConversion, H5I_INVALID_HID, H5I_INVALID_HID, keep_descriptors);
    H5Eclear2(H5E_DEFAULT);
  }
};

void ensure_registered() {
  static Registration r;
  if (!r.ok) fail(CKPT_ERR_INTERNAL, "cannot register the conversion that checks variable-length data");
}

}  // namespace

Superblock check_superblock(int fd, const std::string& path, uint64_t file_size) {
  static const uint8_t kSig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  // HDF5 looks for its superblock at 0, then at every power of two from 512 (after a user block).
  for (uint64_t at = 0; at + 8 <= file_size; at = at == 0 ? 512 : at * 2) {
    uint8_t b[96] = {};
    const size_t got = static_cast<size_t>(std::min<uint64_t>(sizeof b, file_size - at));
    read_at(fd, b, got, at, path);
    if (std::memcmp(b, kSig, 8) != 0) continue;
    Superblock sb;
    sb.offset = at;
    const unsigned version = got > 8 ? b[8] : 255;
    size_t base_at;
    if (version == 0 || version == 1) {
      sb.sizeof_addr = got > 13 ? b[13] : 0;
      sb.sizeof_size = got > 14 ? b[14] : 0;
      base_at = version == 0 ? 24 : 28;
    } else if (version == 2 || version == 3) {
      sb.sizeof_addr = got > 9 ? b[9] : 0;
      sb.sizeof_size = got > 10 ? b[10] : 0;
      base_at = 12;
    } else {
      fail(CKPT_ERR_FORMAT, "superblock at offset " + std::to_string(at) + ": version " +
                                std::to_string(version) + " is not one HDF5 1.10 writes");
    }
    for (unsigned s : {sb.sizeof_addr, sb.sizeof_size})
      if (s != 2 && s != 4 && s != 8)
        fail(CKPT_ERR_FORMAT, "superblock at offset " + std::to_string(at) + ": " + std::to_string(s) +
                                  "-byte addresses or lengths are not supported");
    // v0/v1: base, free-space info, end of file; v2/v3: base, superblock extension, end of file.
    const size_t eof_at = base_at + 2 * sb.sizeof_addr;
    if (eof_at + sb.sizeof_addr > got)
      fail(CKPT_ERR_FORMAT, "truncated file: the superblock at offset " + std::to_string(at) +
                                " is cut off (the file has " + std::to_string(file_size) + " bytes)");
    const uint64_t stored_base = le(b + base_at, sb.sizeof_addr);
    const uint64_t eof = le(b + eof_at, sb.sizeof_addr);
    if (is_undefined(stored_base, sb.sizeof_addr) || stored_base > file_size)
      fail(CKPT_ERR_FORMAT, "superblock at offset " + std::to_string(at) + ": base address " +
                                std::to_string(stored_base) + " lies outside the file");
    // libhdf5 takes addresses as relative to where it found the superblock, whatever base the
    // superblock stores (it moves the end of file by the difference), so the checks do too: with
    // the stored base they looked at other bytes than libhdf5 then read.
    sb.base = at;
    if (!is_undefined(eof, sb.sizeof_addr) && eof > file_size)
      fail(CKPT_ERR_FORMAT, "truncated file: the superblock says the file ends at byte " +
                                std::to_string(eof) + " but it has " + std::to_string(file_size));
#if CKPT_H5_GUARD_METADATA
    if (version <= 1) {
      // The driver information block: version, 3 reserved bytes, its size (4 bytes), the
      // driver's name (8), then that many bytes. libhdf5 1.10 allocates it by that size before
      // it reads it (a 872-byte file asked for 687 MB).
      const size_t driver_at = eof_at + sb.sizeof_addr;
      if (driver_at + sb.sizeof_addr > got)
        fail(CKPT_ERR_FORMAT, "truncated file: the superblock at offset " + std::to_string(at) + " is cut off");
      const uint64_t driver = le(b + driver_at, sb.sizeof_addr);
      if (!is_undefined(driver, sb.sizeof_addr)) {
        const uint64_t start = sb.base + driver;
        uint8_t h[8] = {};
        if (driver > file_size || start > file_size || file_size - start < 16)
          fail(CKPT_ERR_FORMAT, "the superblock's driver information block at " + std::to_string(driver) + " lies outside the file");
        read_at(fd, h, sizeof h, start, path);
        const uint64_t size = le(h + 4, 4);
        if (size > file_size - start - 16)
          fail(CKPT_ERR_FORMAT, "the superblock's driver information block at " + std::to_string(driver) + " claims " +
                                    std::to_string(size) + " bytes; the file has " + std::to_string(file_size));
      }
    }
#endif
    return sb;
  }
  fail(CKPT_ERR_FORMAT, "not an HDF5 file: no superblock signature at offset 0 or at any power of "
                        "two from 512 (the file has " + std::to_string(file_size) + " bytes)");
}

int FileGuard::open_input(const std::string& path, uint64_t* size) {
  // Non-blocking, so that a FIFO or a device is refused rather than waited on.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fail(errno == ENOENT ? CKPT_ERR_NOT_FOUND : CKPT_ERR_IO, ckpt::sdk::os_error("cannot open", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(CKPT_ERR_IO, "'" + path + "' is not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

FileGuard::FileGuard(const std::string& path) : path_(path), fd_(open_input(path, &file_size_)) {
  try {
    sb_ = check_superblock(fd_, path, file_size_);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

FileGuard::~FileGuard() {
  if (fd_ >= 0) ::close(fd_);
}

const std::map<uint32_t, uint64_t>& FileGuard::collection(uint64_t addr, const std::string& where) {
  if (auto it = collections_.find(addr); it != collections_.end()) return it->second;
  const unsigned L = sb_.sizeof_size;
  const std::string at = (where.empty() ? "" : where + ": ") + "global heap collection at address " + std::to_string(addr);
  // "GCOL", version 1, three reserved bytes, the collection's size; then objects of a 2-byte
  // index, 2-byte reference count, 4 reserved bytes, a length and the data padded to 8 bytes.
  const uint64_t header = 8 + L, object_header = 8 + L;
  const uint64_t start = sb_.base + addr;
  if (addr > file_size_ || start > file_size_ || file_size_ - start < header)
    fail(CKPT_ERR_FORMAT, at + " lies past the end of the file (" + std::to_string(file_size_) + " bytes)");
  uint8_t h[16] = {};
  read_at(fd_, h, header, start, path_);
  if (std::memcmp(h, "GCOL", 4) != 0 || h[4] != 1)
    fail(CKPT_ERR_FORMAT, at + ": no collection signature there");
  const uint64_t size = le(h + 8, L);
  if (size < header || size > file_size_ - start)
    fail(CKPT_ERR_FORMAT, at + ": its size of " + std::to_string(size) + " bytes does not fit in the file");
  std::vector<uint8_t> c(size);
  read_at(fd_, c.data(), size, start, path_);
  std::map<uint32_t, uint64_t> objects;
  // The walk libhdf5 does, with the bounds it leaves out.
  for (uint64_t p = header; p < size;) {
    if (size - p < object_header) break;  // too small for an object: free space
    const uint32_t index = static_cast<uint32_t>(le(c.data() + p, 2));
    const uint64_t length = le(c.data() + p + 8, L);
    uint64_t need;
    if (index == 0) {
      need = length;  // the free-space object counts its own header
    } else {
      if (length > size) fail(CKPT_ERR_FORMAT, at + ": object " + std::to_string(index) + " is larger than the collection");
      need = object_header + ((length + 7) & ~uint64_t(7));
      objects[index] = length;
    }
    if (need == 0 || need > size - p)
      fail(CKPT_ERR_FORMAT, at + ": object " + std::to_string(index) + " of " + std::to_string(length) +
                                " bytes runs past the collection's end");
    p += need;
  }
  return collections_.emplace(addr, std::move(objects)).first->second;
}

void FileGuard::read_bytes(void* buf, size_t n, uint64_t at) const { read_at(fd_, buf, n, at, path_); }

#if CKPT_H5_GUARD_METADATA
void FileGuard::check_collection_at(uint64_t offset) {
  if (offset < sb_.base) fail(CKPT_ERR_FORMAT, "a global heap collection before the file's base address");
  collection(offset - sb_.base, "");
}
#endif

void FileGuard::check_vlen(const ValueSource& source, size_t count, const std::string& where) {
  if (count == 0) return;
  ensure_registered();
  const unsigned A = sb_.sizeof_addr;
  const size_t item = 4 + A + 4;  // sequence length, collection address, object index
  Handle raw_type = type_handle(H5Tcreate(H5T_OPAQUE, item), where, CKPT_ERR_INTERNAL);
  h5_ok(H5Tset_tag(raw_type, kRawTag), where, CKPT_ERR_INTERNAL);
  std::vector<uint8_t> raw(count * item);
  h5_ok(source.read(raw_type, raw.data()), where);
  // libhdf5 copies a heap object once for every element that refers to it: elements sharing
  // one object would cost their count times its size from a file that holds it once.
  // One total for the whole file, attributes and datasets alike: many attributes each sharing
  // one object would otherwise each be allowed as much.
  const uint64_t allowed = kMaxVlenBytes + 2 * file_size_;
  uint64_t total = vlen_bytes_;
  for (size_t k = 0; k < count; ++k) {
    const uint8_t* e = raw.data() + k * item;
    const uint64_t length = le(e, 4), addr = le(e + 4, A);
    const uint32_t index = static_cast<uint32_t>(le(e + 4 + A, 4));
    if (addr == 0 || length == 0) continue;  // a null or empty element reads no heap
    const auto& objects = collection(addr, where);
    auto it = objects.find(index);
    if (it == objects.end())
      fail(CKPT_ERR_FORMAT, where + ": element " + std::to_string(k) + " refers to object " +
                                std::to_string(index) + " of the global heap collection at address " +
                                std::to_string(addr) + ", which it does not hold");
    if (it->second != length)
      fail(CKPT_ERR_FORMAT, where + ": element " + std::to_string(k) + " has " + std::to_string(length) +
                                " bytes, its global heap object " + std::to_string(it->second));
    total += length;
    if (total > allowed)
      fail(CKPT_ERR_LIMIT, where + ": its " + std::to_string(count) + " variable-length elements would read more than " +
                               std::to_string(allowed) + " bytes from a file of " + std::to_string(file_size_) +
                               " (elements sharing heap objects, with what the file's attributes and datasets read before it)");
  }
  vlen_bytes_ = total;
}

}  // namespace ckpt_hdf5
