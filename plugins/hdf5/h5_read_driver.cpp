#include "h5_read_driver.hpp"

#include "h5_guard.hpp"
#include "h5_workarounds.hpp"

#include <cerrno>
#include <cstring>
#include <functional>
#include <exception>
#include <fcntl.h>
#include <new>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt_hdf5 {

namespace {

struct DriverInfo {
  int fd = -1;
  FileGuard* guard = nullptr;
};

// libhdf5 fills `pub` after open; the rest is ours.
struct ReadFile {
  H5FD_t pub;
  int fd;
  FileGuard* guard;
  haddr_t eoa;
  haddr_t eof;
};

ReadFile* of(const H5FD_t* f) { return reinterpret_cast<ReadFile*>(const_cast<H5FD_t*>(f)); }

// A failure goes on libhdf5's error stack as its own drivers' do, so that h5_message() (which
// takes the innermost entry) says what was wrong.
herr_t fail_read(const std::string& what) {
  H5Epush2(H5E_DEFAULT, __FILE__, "ckpt_read", __LINE__, H5E_ERR_CLS, H5E_VFL, H5E_READERROR, "%s", what.c_str());
  return -1;
}
std::string bytes(haddr_t addr, size_t size) {
  return " (" + std::to_string(size) + " bytes at " + std::to_string(addr) + ")";
}
constexpr herr_t kFail = -1;

H5FD_t* open_file(const char*, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  if ((flags & H5F_ACC_RDWR) || (flags & H5F_ACC_CREAT) || (flags & H5F_ACC_TRUNC)) return nullptr;
  if (maxaddr == 0 || maxaddr == HADDR_UNDEF) return nullptr;
  const auto* info = static_cast<const DriverInfo*>(H5Pget_driver_info(fapl));
  if (!info || info->fd < 0 || !info->guard) return nullptr;
  struct stat st {};
  if (::fstat(info->fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  const int fd = ::fcntl(info->fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  auto* f = new (std::nothrow) ReadFile{};
  if (!f) {
    ::close(fd);
    return nullptr;
  }
  f->fd = fd;
  f->guard = info->guard;
  f->eoa = 0;
  f->eof = static_cast<haddr_t>(st.st_size);
  return &f->pub;
}

herr_t close_file(H5FD_t* file) {
  ReadFile* f = of(file);
  ::close(f->fd);
  delete f;
  return 0;
}

// Every open is a file of its own, also when two readers open one path: libhdf5 then never
// shares its state of a file between them, so a file that one failed read left half-closed
// (libhdf5 1.10 has error paths that do) cannot reach the next read of it. Nothing is written,
// so two views of one file cannot disagree.
int compare(const H5FD_t* a, const H5FD_t* b) {
  const ReadFile* x = of(a);
  const ReadFile* y = of(b);
  if (x == y) return 0;
  return std::less<const ReadFile*>()(x, y) ? -1 : 1;
}

// No feature flags: above all not H5FD_FEAT_ACCUMULATE_METADATA (see the header). Nothing is
// written, so aggregation does not matter; raw data goes straight to read().
herr_t query(const H5FD_t*, unsigned long* flags) {
  *flags = 0;
  return 0;
}

haddr_t get_eoa(const H5FD_t* file, H5FD_mem_t) { return of(file)->eoa; }

herr_t set_eoa(H5FD_t* file, H5FD_mem_t, haddr_t addr) {
  of(file)->eoa = addr;
  return 0;
}

haddr_t get_eof(const H5FD_t* file, H5FD_mem_t) { return of(file)->eof; }

herr_t get_handle(H5FD_t* file, hid_t, void** handle) {
  *handle = &of(file)->fd;
  return 0;
}

// As sec2 does, bytes past the end of the file read as zeros (libhdf5 asks for them when a
// dataset was never written), but an address range that wraps, or lies beyond the end of what
// the superblock allocates, is an error rather than arithmetic on it.
herr_t read_bytes(ReadFile* f, haddr_t addr, size_t size, void* buf) {
  if (addr == HADDR_UNDEF) return fail_read("a read of " + std::to_string(size) + " bytes at an undefined address");
  if (size > HADDR_UNDEF - addr) return fail_read("an address range that wraps around" + bytes(addr, size));
  if (addr + size > f->eoa)
    return fail_read("a read beyond the end of the file the superblock gives, " + std::to_string(f->eoa) + bytes(addr, size));
  auto* out = static_cast<unsigned char*>(buf);
  while (size > 0) {
    if (addr >= f->eof) {
      std::memset(out, 0, size);
      return 0;
    }
    const size_t want = static_cast<size_t>(std::min<haddr_t>(size, f->eof - addr));
    const ssize_t got = ::pread(f->fd, out, want, static_cast<off_t>(addr));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return fail_read(std::string(got < 0 ? std::strerror(errno) : "the file shrank while read") + bytes(addr, size));
    out += got;
    addr += static_cast<haddr_t>(got);
    size -= static_cast<size_t>(got);
  }
  return 0;
}

#if CKPT_H5_GUARD_METADATA
// libhdf5 hands global heap reads to the driver as raw data (H5F_block_read maps the one type
// to the other), so a collection is known by its bytes: "GCOL", version 1, three zero bytes.
// Raw data that happens to begin so is checked as one too, which costs a parse and fails only
// when those bytes would be a damaged collection.
bool looks_like_collection(const void* buf, size_t size) {
  static const unsigned char kHead[8] = {'G', 'C', 'O', 'L', 1, 0, 0, 0};
  return size >= sizeof kHead && std::memcmp(buf, kHead, sizeof kHead) == 0;
}
#endif

herr_t driver_read(H5FD_t* file, [[maybe_unused]] H5FD_mem_t type, hid_t, haddr_t addr, size_t size, void* buf) {
  ReadFile* f = of(file);
  if (read_bytes(f, addr, size, buf) < 0) return -1;
#if CKPT_H5_GUARD_METADATA
  // Checked before libhdf5 parses them, on the versions that trust them (h5_workarounds.hpp).
  const bool collection = type == H5FD_MEM_DRAW && looks_like_collection(buf, size);
  if (collection || type == H5FD_MEM_OHDR) {
    // No exception may cross into libhdf5's C frames.
    try {
      if (collection) f->guard->check_collection_at(addr);
      else f->guard->check_object_header_read(addr, static_cast<const uint8_t*>(buf), size, f->eoa);
    } catch (const std::exception& e) {
      return fail_read(e.what());
    } catch (...) {
      return fail_read("checking what libhdf5 read failed");
    }
  }
#endif
  return 0;
}

herr_t driver_write(H5FD_t*, H5FD_mem_t, hid_t, haddr_t, size_t, const void*) { return kFail; }

H5FD_class_t make_class() {
  H5FD_class_t c{};
  c.name = "ckpt_read";
  c.maxaddr = static_cast<haddr_t>(INT64_MAX);  // off_t
  c.fc_degree = H5F_CLOSE_STRONG;
  c.fapl_size = sizeof(DriverInfo);
  c.open = open_file;
  c.close = close_file;
  c.cmp = compare;
  c.query = query;
  c.get_eoa = get_eoa;
  c.set_eoa = set_eoa;
  c.get_eof = get_eof;
  c.get_handle = get_handle;
  c.read = driver_read;
  c.write = driver_write;
  const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  std::memcpy(c.fl_map, map, sizeof map);
  return c;
}

// The class's functions live in this plugin and libhdf5 outlives it (h5_common.cpp), so the
// driver leaves with the plugin.
struct Registration {
  H5FD_class_t cls = make_class();
  hid_t id = H5I_INVALID_HID;
  Registration() {
    id = H5FDregister(&cls);
    if (id < 0) H5Eclear2(H5E_DEFAULT);
  }
  ~Registration() {
    Lock lock;
    if (id >= 0) H5FDunregister(id);
    H5Eclear2(H5E_DEFAULT);
  }
};

}  // namespace

hid_t read_driver() {
  static Registration r;
  if (r.id < 0) ckpt::sdk::fail(CKPT_ERR_INTERNAL, "libhdf5 did not take ckpt's read driver");
  return r.id;
}

void use_read_driver(hid_t fapl, FileGuard& guard) {
  const DriverInfo info{guard.fd(), &guard};
  h5_ok(H5Pset_driver(fapl, read_driver(), &info), "opening", CKPT_ERR_INTERNAL);
}

}  // namespace ckpt_hdf5
