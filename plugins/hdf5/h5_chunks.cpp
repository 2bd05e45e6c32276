#include "h5_chunks.hpp"

#include "h5_workarounds.hpp"

#include <lzf.h>

#include <climits>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

// Deflate's densest stream produces 1032 bytes per stored byte (plus zlib's 6 bytes of header
// and trailer): a chunk that claims more than that is damaged, and is refused before a buffer
// of its claimed size is allocated.
constexpr uint64_t kMaxInflation = 1032;
constexpr uint64_t kZlibOverhead = 64;
// HDF5 itself refuses chunks of 4 GiB or more.
constexpr uint64_t kMaxChunkBytes = uint64_t(1) << 32;
constexpr uint64_t kFletcherBytes = 4;

std::string coords(std::span<const hsize_t> offset) {
  std::string s = "[";
  for (size_t i = 0; i < offset.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(offset[i]);
  }
  return s + "]";
}

struct Filter {
  H5Z_filter_t id;
  unsigned element_size;  // shuffle's parameter: the size of the values it interleaved
};

// h5py's own LZF filter (registered with the HDF Group as 32000): liblzf's format, no header;
// a chunk LZF could not shrink is stored with the filter skipped.
constexpr H5Z_filter_t kLzf = 32000;

// Fails naming the dataset and the filter when libhdf5 has no decoder for one of its filters
// (it would report only that it could not open its plugin folder). Debian's hdf5-filter-plugin
// packages, installed by scripts/setup.sh, give it LZ4, BZip2, Bitshuffle and Blosc.
void check_filters_available(hid_t dcpl, const std::string& where) {
  const int n = H5Pget_nfilters(dcpl);
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0, config = 0;
    size_t n_values = 0;
    char name[64] = {};
    const H5Z_filter_t f = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &n_values, nullptr, sizeof name, name, &config);
    if (f < 0) h5_fail(CKPT_ERR_FORMAT, where);
    if (f == kLzf) continue;  // decoded here
    if (H5Zfilter_avail(f) > 0) continue;
    H5Eclear2(H5E_DEFAULT);
    const std::string known = std::string(name).empty() ? "" : " (" + std::string(name) + ")";
    fail(CKPT_ERR_UNSUPPORTED, where + ": uses HDF5 filter " + std::to_string(f) + known +
                                   ", for which no decoder is available (libhdf5 has no such filter built in or in its "
                                   "plugin folder)");
  }
  H5Eclear2(H5E_DEFAULT);
}

// The filters of a chunked dataset in the order they ran when writing, when every one of them
// is one decoded here; nullopt otherwise (libhdf5 then reads the dataset as it is).
std::optional<std::vector<Filter>> own_filters(hid_t dcpl, const std::string& where) {
  if (H5Pget_layout(dcpl) != H5D_CHUNKED) return std::nullopt;
  // Partial edge chunks stored unfiltered (H5Pset_chunk_opts): libhdf5 knows which those are.
  unsigned opts = 0;
  if (H5Pget_chunk_opts(dcpl, &opts) < 0 || (opts & H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS)) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  const int n = H5Pget_nfilters(dcpl);
  if (n <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  std::vector<Filter> filters;
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0, config = 0, values[4] = {};
    size_t n_values = 4;
    const H5Z_filter_t f = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &n_values, values, 0,
                                          nullptr, &config);
    if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32 && f != kLzf) {
      H5Eclear2(H5E_DEFAULT);
      return std::nullopt;
    }
    Filter filter{f, 0};
    if (f == H5Z_FILTER_SHUFFLE) {
      // What libhdf5's shuffle filter itself requires of its parameters.
      if (n_values != 1 || values[0] == 0)
        fail(CKPT_ERR_FORMAT, where + ": the shuffle filter has invalid parameters");
      filter.element_size = values[0];
    }
    filters.push_back(filter);
  }
#if !CKPT_H5_DECODE_CHUNKS
  // libhdf5 checks what its own filters decode to; only LZF, which it lacks, is left to us.
  if (std::none_of(filters.begin(), filters.end(), [](const Filter& f) { return f.id == kLzf; })) return std::nullopt;
#endif
  return filters;
}

// HDF5's Fletcher-32 (H5_checksum_fletcher32): over big-endian 16-bit words, an odd last byte
// taken as the high byte of a word.
uint32_t fletcher32(const unsigned char* data, size_t n) {
  uint32_t sum1 = 0, sum2 = 0;
  size_t words = n / 2;
  while (words) {
    size_t block = std::min<size_t>(words, 360);
    words -= block;
    do {
      sum1 += (uint32_t(data[0]) << 8) | data[1];
      data += 2;
      sum2 += sum1;
    } while (--block);
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (n % 2) {
    sum1 += uint32_t(*data) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return (sum2 << 16) | sum1;
}

void check_fletcher32(const unsigned char* data, size_t n, const std::string& at) {
  if (n < kFletcherBytes) fail(CKPT_ERR_FORMAT, at + ": shorter than its Fletcher-32 checksum");
  const unsigned char* s = data + n - kFletcherBytes;
  const uint32_t stored = uint32_t(s[0]) | uint32_t(s[1]) << 8 | uint32_t(s[2]) << 16 | uint32_t(s[3]) << 24;
  const uint32_t sum = fletcher32(data, n - kFletcherBytes);
  // HDF5 before 1.6.3 stored the checksum with the bytes of each half swapped; libhdf5 still
  // accepts that form, and so does this.
  const uint32_t swapped = ((sum & 0x00ff00ffu) << 8) | ((sum >> 8) & 0x00ff00ffu);
  if (stored != sum && stored != swapped)
    fail(CKPT_ERR_FORMAT, at + ": fails its Fletcher-32 checksum");
}

// Inflates exactly `expected` bytes from in[0, in_size) into `out`, or fails naming `at`.
void inflate_exact(const unsigned char* in, size_t in_size, std::vector<unsigned char>& out, uint64_t expected,
                   const std::string& at) {
  if (expected > in_size * kMaxInflation + kZlibOverhead)
    fail(CKPT_ERR_FORMAT, at + ": " + std::to_string(in_size) + " compressed bytes cannot inflate to the " +
                              std::to_string(expected) + " bytes a chunk holds");
  out.resize(expected);
  z_stream z{};
  if (inflateInit(&z) != Z_OK) fail(CKPT_ERR_OUT_OF_MEMORY, at + ": cannot start inflating");
  z.next_in = const_cast<unsigned char*>(in);
  z.avail_in = static_cast<uInt>(in_size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int r = inflate(&z, Z_FINISH);
  const size_t produced = out.size() - z.avail_out;
  const std::string reason = z.msg ? z.msg : "stream ends early";
  inflateEnd(&z);
  if (r == Z_BUF_ERROR && z.avail_out == 0)
    fail(CKPT_ERR_FORMAT, at + ": decodes to more than " + std::to_string(expected) + " bytes; a chunk holds " +
                              std::to_string(expected));
  if (r != Z_STREAM_END)
    fail(CKPT_ERR_FORMAT, at + ": the compressed bytes are damaged (zlib: " + reason + ")");
  if (produced != expected)
    fail(CKPT_ERR_FORMAT, at + ": decodes to " + std::to_string(produced) + " bytes; a chunk holds " +
                              std::to_string(expected));
  if (z.avail_in != 0)
    fail(CKPT_ERR_FORMAT, at + ": " + std::to_string(z.avail_in) + " bytes follow its compressed stream");
}

// Undoes HDF5's shuffle: byte j of every value was gathered into the j-th run of n/size bytes;
// a remainder of fewer than `size` bytes was left at the end as it was.
void unshuffle(const unsigned char* in, size_t n, unsigned size, std::vector<unsigned char>& out) {
  out.resize(n);
  const size_t values = n / size;
  if (size <= 1 || values <= 1) {
    std::memcpy(out.data(), in, n);
    return;
  }
  for (size_t j = 0; j < size; ++j) {
    const unsigned char* src = in + j * values;
    unsigned char* d = out.data() + j;
    for (size_t i = 0; i < values; ++i, d += size) *d = src[i];
  }
  std::memcpy(out.data() + values * size, in + values * size, n - values * size);
}

// Scratch buffers kept across the chunks of one read.
struct Buffers {
  std::vector<unsigned char> raw, a, b, background;
  std::vector<unsigned char>& other(const std::vector<unsigned char>* cur) { return cur == &a ? b : a; }
};

// Reads the stored chunk at `offset` (`size` bytes) and runs the pipeline backwards; returns
// the buffer holding the chunk's `chunk_bytes` decoded bytes.
std::vector<unsigned char>& decode_chunk(hid_t dset, const std::vector<Filter>& filters, const hsize_t* offset,
                                         hsize_t size, uint64_t chunk_bytes, Buffers& buf, const std::string& at) {
  buf.raw.resize(size);
  uint32_t mask = 0;
  h5_ok(H5Dread_chunk(dset, H5P_DEFAULT, offset, &mask, buf.raw.data()), at);
  std::vector<unsigned char>* cur = &buf.raw;
  size_t n = size;
  // A set mask bit means that filter was skipped when the chunk was written.
  auto applied = [&](size_t i) { return !(mask & (1u << i)); };
  for (size_t i = filters.size(); i-- > 0;) {
    if (!applied(i)) continue;
    switch (filters[i].id) {
      case H5Z_FILTER_FLETCHER32:
        check_fletcher32(cur->data(), n, at);
        n -= kFletcherBytes;
        break;
      case H5Z_FILTER_DEFLATE:
      case kLzf: {
        // Filters that ran before this one when writing shrink nothing but checksums away.
        uint64_t expected = chunk_bytes;
        for (size_t j = 0; j < i; ++j)
          if (applied(j) && filters[j].id == H5Z_FILTER_FLETCHER32) expected += kFletcherBytes;
        std::vector<unsigned char>& out = buf.other(cur);
        if (filters[i].id == H5Z_FILTER_DEFLATE) {
          inflate_exact(cur->data(), n, out, expected, at);
        } else {
          out.resize(expected);
          // liblzf writes no more than the room it is given and says how much it wrote.
          const unsigned got = expected ? lzf_decompress(cur->data(), static_cast<unsigned>(n), out.data(),
                                                        static_cast<unsigned>(expected))
                                        : 0;
          if (n > UINT_MAX || expected > UINT_MAX || got != expected)
            fail(CKPT_ERR_FORMAT, at + ": its " + std::to_string(n) + " LZF-compressed bytes do not decode to the chunk's " +
                                      std::to_string(expected));
        }
        cur = &out;
        n = expected;
        break;
      }
      case H5Z_FILTER_SHUFFLE: {
        std::vector<unsigned char>& out = buf.other(cur);
        unshuffle(cur->data(), n, filters[i].element_size, out);
        cur = &out;
        break;
      }
      default:
        fail(CKPT_ERR_INTERNAL, at + ": unexpected filter");
    }
  }
  if (n != chunk_bytes)
    fail(CKPT_ERR_FORMAT, at + ": decodes to " + std::to_string(n) + " bytes; a chunk holds " +
                              std::to_string(chunk_bytes));
  cur->resize(n);
  return *cur;
}

// Copies the box of extent `ext` at `src_at` of a C-order array of shape `src_dims` to `dst_at`
// of one of shape `dst_dims`. Trailing dimensions the box spans in both are copied as one run.
void copy_box(const unsigned char* src, std::span<const hsize_t> src_dims, std::span<const hsize_t> src_at,
              std::byte* dst, std::span<const hsize_t> dst_dims, std::span<const hsize_t> dst_at,
              std::span<const hsize_t> ext, size_t item) {
  const size_t r = ext.size();
  std::vector<uint64_t> ss(r), ds(r);
  uint64_t s_stride = item, d_stride = item;
  for (size_t d = r; d-- > 0;) {
    ss[d] = s_stride;
    ds[d] = d_stride;
    s_stride *= src_dims[d];
    d_stride *= dst_dims[d];
  }
  size_t k = r - 1;
  uint64_t run = ext[k] * item;
  while (k > 0 && ext[k] == src_dims[k] && ext[k] == dst_dims[k]) run *= ext[--k];
  uint64_t s_off = 0, d_off = 0;
  for (size_t d = 0; d < r; ++d) {
    s_off += src_at[d] * ss[d];
    d_off += dst_at[d] * ds[d];
  }
  std::vector<hsize_t> idx(k, 0);
  for (;;) {
    std::memcpy(dst + d_off, src + s_off, run);
    size_t d = k;
    for (;;) {
      if (d == 0) return;
      --d;
      ++idx[d];
      s_off += ss[d];
      d_off += ds[d];
      if (idx[d] < ext[d]) break;
      s_off -= ss[d] * idx[d];
      d_off -= ds[d] * idx[d];
      idx[d] = 0;
    }
  }
}

// H5Dread of the file box (file_start, ext) into the memory box at mem_at of an array of shape
// mem_dims; `whole` reads the whole dataset into the whole buffer.
void hdf5_read(hid_t dset, hid_t memtype, std::span<const hsize_t> file_start, std::span<const hsize_t> ext,
               std::span<const hsize_t> mem_dims, std::span<const hsize_t> mem_at, bool whole, std::byte* dst,
               const std::string& where) {
  if (whole) {
    h5_ok(H5Dread(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst), where);
    return;
  }
  const int r = static_cast<int>(ext.size());
  Handle fspace = space_handle(H5Dget_space(dset), where);
  h5_ok(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, file_start.data(), nullptr, ext.data(), nullptr), where);
  Handle mspace = space_handle(H5Screate_simple(r, mem_dims.data(), nullptr), where);
  h5_ok(H5Sselect_hyperslab(mspace, H5S_SELECT_SET, mem_at.data(), nullptr, ext.data(), nullptr), where);
  h5_ok(H5Dread(dset, memtype, mspace, fspace, H5P_DEFAULT, dst), where);
}

}  // namespace

void read_box(hid_t dset, hid_t memtype, std::span<const hsize_t> start, std::span<const hsize_t> count,
              std::byte* dst, uint64_t file_size, const std::string& where) {
  const size_t r = start.size();
  Handle space = space_handle(H5Dget_space(dset), where);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) h5_fail(CKPT_ERR_FORMAT, where);
  if (static_cast<size_t>(rank) != r) fail(CKPT_ERR_FORMAT, where + ": its rank changed since it was listed");
  std::vector<hsize_t> dims(r);
  if (r) h5_ok(H5Sget_simple_extent_dims(space, dims.data(), nullptr), where);
  bool whole = true;
  for (size_t d = 0; d < r; ++d) {
    if (start[d] > dims[d] || count[d] > dims[d] - start[d])
      fail(CKPT_ERR_FORMAT, where + ": its shape changed since it was listed");
    whole = whole && start[d] == 0 && count[d] == dims[d];
    if (count[d] == 0) return;
  }
  Handle dcpl = plist_handle(H5Dget_create_plist(dset), where, CKPT_ERR_FORMAT);
  const std::vector<hsize_t> origin(r, 0);
  check_filters_available(dcpl, where);
  const auto filters = r ? own_filters(dcpl, where) : std::nullopt;
  if (!filters) return hdf5_read(dset, memtype, start, count, count, origin, whole, dst, where);

  Handle ftype = type_handle(H5Dget_type(dset), where);
  const size_t file_item = H5Tget_size(ftype), mem_item = H5Tget_size(memtype);
  const htri_t same = H5Tequal(ftype, memtype);
  if (same < 0) h5_fail(CKPT_ERR_FORMAT, where);
  std::vector<hsize_t> chunk(r);
  if (H5Pget_chunk(dcpl, static_cast<int>(r), chunk.data()) != static_cast<int>(r)) h5_fail(CKPT_ERR_FORMAT, where);
  if (file_item == 0 || mem_item == 0) fail(CKPT_ERR_FORMAT, where + ": a datatype of size 0");
  uint64_t chunk_values = 1;
  for (hsize_t c : chunk) {
    if (c == 0) fail(CKPT_ERR_FORMAT, where + ": a chunk dimension is 0");
    if (c >= kMaxChunkBytes / (chunk_values * file_item))
      fail(CKPT_ERR_FORMAT, where + ": chunks of 4 GiB or more");
    chunk_values *= c;
  }
  const uint64_t chunk_bytes = chunk_values * file_item;

  // The grid of chunks the box touches, visited in C order.
  std::vector<hsize_t> first(r), last(r), idx(r), offset(r), lo(r), ext(r), in_chunk(r), in_box(r);
  for (size_t d = 0; d < r; ++d) {
    first[d] = start[d] / chunk[d];
    last[d] = (start[d] + count[d] - 1) / chunk[d];
  }
  idx = first;
  Buffers buf;
  for (;;) {
    for (size_t d = 0; d < r; ++d) {
      offset[d] = idx[d] * chunk[d];
      lo[d] = std::max(start[d], offset[d]);
      ext[d] = std::min(start[d] + count[d], offset[d] + chunk[d]) - lo[d];
      in_chunk[d] = lo[d] - offset[d];
      in_box[d] = lo[d] - start[d];
    }
    const std::string at = where + " chunk at " + coords(offset);
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    h5_ok(H5Dget_chunk_info_by_coord(dset, offset.data(), &mask, &addr, &size), at);
    if (addr == HADDR_UNDEF) {
      // Never written: HDF5 fills it with the dataset's fill value, decoding nothing.
      hdf5_read(dset, memtype, lo, ext, count, in_box, false, dst, at);
    } else {
      if (addr > file_size || size > file_size - addr)
        fail(CKPT_ERR_FORMAT, at + ": " + std::to_string(size) + " bytes at offset " + std::to_string(addr) +
                                  " lie past the end of the file");
      std::vector<unsigned char>& data = decode_chunk(dset, *filters, offset.data(), size, chunk_bytes, buf, at);
      if (!same) {
        data.resize(chunk_values * std::max(file_item, mem_item));
        // A compound conversion (a column of records: one field of each) wants a background
        // buffer of the memory type's elements.
        if (H5Tget_class(memtype) == H5T_COMPOUND) buf.background.assign(chunk_values * mem_item, 0);
        h5_ok(H5Tconvert(ftype, memtype, chunk_values, data.data(),
                         H5Tget_class(memtype) == H5T_COMPOUND ? buf.background.data() : nullptr, H5P_DEFAULT), at);
      }
      copy_box(data.data(), chunk, in_chunk, dst, count, in_box, ext, mem_item);
    }
    size_t d = r;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++idx[d] <= last[d]) break;
      idx[d] = first[d];
    }
  }
}

}  // namespace ckpt_hdf5
