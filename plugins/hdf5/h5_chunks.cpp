#include "h5_chunks.hpp"

#include <zlib.h>

#include <vector>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

std::string coords(const std::vector<hsize_t>& offset) {
  std::string s = "[";
  for (size_t i = 0; i < offset.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(offset[i]);
  }
  return s + "]";
}

// Inflates `in` into `out`, whose size bounds the result; returns the bytes produced, or
// out.size() + 1 when there would be more.
size_t inflate_bounded(const std::vector<unsigned char>& in, size_t in_size,
                       std::vector<unsigned char>& out, const std::string& where) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) fail(CKPT_ERR_OUT_OF_MEMORY, where + ": cannot start inflating");
  z.next_in = const_cast<unsigned char*>(in.data());
  z.avail_in = static_cast<uInt>(in_size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int r = inflate(&z, Z_FINISH);
  const size_t produced = out.size() - z.avail_out;
  inflateEnd(&z);
  if (r == Z_STREAM_END) return produced;
  if (r == Z_BUF_ERROR && z.avail_out == 0) return out.size() + 1;
  fail(CKPT_ERR_FORMAT, where + ": the compressed bytes are damaged (zlib: " +
                            (z.msg ? z.msg : "stream ends early") + ")");
}

}  // namespace

void check_chunks(hid_t dset, uint64_t file_size, const std::string& where) {
  Handle dcpl = plist_handle(H5Dget_create_plist(dset), where, CKPT_ERR_FORMAT);
  if (H5Pget_layout(dcpl) != H5D_CHUNKED) return;
  const int nfilters = H5Pget_nfilters(dcpl);
  if (nfilters <= 0) return;
  std::vector<H5Z_filter_t> filters;
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t n_values = 0;
    const H5Z_filter_t f = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &n_values, nullptr,
                                          0, nullptr, &config);
    if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    filters.push_back(f);
  }

  Handle type = type_handle(H5Dget_type(dset), where);
  Handle space = space_handle(H5Dget_space(dset), where);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank <= 0) return;
  std::vector<hsize_t> dims(static_cast<size_t>(rank)), chunk(static_cast<size_t>(rank));
  h5_ok(H5Sget_simple_extent_dims(space, dims.data(), nullptr), where);
  if (H5Pget_chunk(dcpl, rank, chunk.data()) != rank) h5_fail(CKPT_ERR_FORMAT, where);
  uint64_t chunk_bytes = H5Tget_size(type);
  for (hsize_t c : chunk) {
    if (c == 0) fail(CKPT_ERR_FORMAT, where + ": a chunk dimension is 0");
    chunk_bytes *= c;
    if (chunk_bytes > (uint64_t(1) << 32)) fail(CKPT_ERR_FORMAT, where + ": chunks of 4 GiB or more");
  }
  for (hsize_t d : dims)
    if (d == 0) return;

  std::vector<unsigned char> raw, a, b;
  std::vector<hsize_t> offset(static_cast<size_t>(rank), 0);
  // Visits the chunk grid in C order; chunks never written hold the fill value and are skipped.
  for (;;) {
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    const std::string at = where + " chunk at " + coords(offset);
    h5_ok(H5Dget_chunk_info_by_coord(dset, offset.data(), &mask, &addr, &size), at);
    if (addr != HADDR_UNDEF) {
      if (addr > file_size || size > file_size - addr)
        fail(CKPT_ERR_FORMAT, at + ": " + std::to_string(size) + " bytes at offset " +
                                  std::to_string(addr) + " lie past the end of the file");
      raw.resize(size);
      uint32_t read_mask = 0;
      h5_ok(H5Dread_chunk(dset, H5P_DEFAULT, offset.data(), &read_mask, raw.data()), at);
      // The pipeline runs backwards when reading; a set mask bit means that filter was skipped.
      const std::vector<unsigned char>* cur = &raw;
      size_t cur_size = size;
      for (int i = nfilters - 1; i >= 0; --i) {
        if (mask & (1u << i)) continue;
        if (filters[static_cast<size_t>(i)] == H5Z_FILTER_FLETCHER32) {
          if (cur_size < 4) fail(CKPT_ERR_FORMAT, at + ": shorter than its checksum");
          cur_size -= 4;
        } else if (filters[static_cast<size_t>(i)] == H5Z_FILTER_DEFLATE) {
          std::vector<unsigned char>& out = cur == &a ? b : a;
          out.resize(chunk_bytes);
          cur_size = inflate_bounded(*cur, cur_size, out, at);
          cur = &out;
        }
      }
      if (cur_size != chunk_bytes)
        fail(CKPT_ERR_FORMAT, at + ": decodes to " +
                                  (cur_size > chunk_bytes ? "more than " + std::to_string(chunk_bytes)
                                                          : std::to_string(cur_size)) +
                                  " bytes; a chunk holds " + std::to_string(chunk_bytes));
    }
    int d = rank - 1;
    for (; d >= 0; --d) {
      offset[static_cast<size_t>(d)] += chunk[static_cast<size_t>(d)];
      if (offset[static_cast<size_t>(d)] < dims[static_cast<size_t>(d)]) break;
      offset[static_cast<size_t>(d)] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace ckpt_hdf5
