#include "numpy_writer.hpp"

#include "npy_header.hpp"

#include <libdeflate.h>

#include <cstring>

namespace ckpt_numpy {

using ckpt::sdk::fail;

Container container_for(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  const size_t marker = name.rfind(".ckpt-tmp-");
  if (!name.empty() && name[0] == '.' && marker != std::string::npos && marker > 0) name = name.substr(1, marker - 1);
  if (name.size() >= 4) {
    std::string ext = name.substr(name.size() - 4);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".npy") return Container::npy;
  }
  return Container::npz;
}

NumpyWriter::NumpyWriter(const std::string& path, Container container, bool deflate)
    : path_(path), container_(container), deflate_(deflate) {
  if (container_ == Container::npy) {
    if (deflate_) fail(CKPT_ERR_INVALID_ARGUMENT, "option compress=deflate: a .npy file is never compressed (write .npz)");
    npy_.emplace(path);
  } else {
    // UTF-8 names are flagged so (general purpose bit 11), as Python's zipfile writes them:
    // numpy.load then reads them as the keys they are, not as code page 437.
    zip_.emplace(path, false, true);
  }
}

std::string NumpyWriter::path_of(std::string_view name) const {
  std::string p;
  for (const auto& g : groups_) p += g + "/";
  return p + std::string(name);
}

void NumpyWriter::begin_group(std::string_view name, uint64_t, uint64_t n_children) {
  if (!root_open_) {
    root_open_ = true;
    return;
  }
  if (container_ == Container::npy)
    fail(CKPT_ERR_UNSUPPORTED, "group '" + path_of(name) + "': a .npy file holds one array and nothing else; "
                                                            "write a .npz to keep groups (members 'group/name.npy')");
  groups_.emplace_back(name);
  // A member lies one level deeper than the group holding it (an empty group is a directory
  // member of its own depth), so a group at kMaxDepth may only be empty.
  const size_t deepest = groups_.size() + (n_children > 0 ? 1 : 0);
  if (deepest > kMaxDepth) {
    std::string path = path_of("");
    path.pop_back();
    if (path.size() > 200) path = path.substr(0, 200) + "...";
    fail(CKPT_ERR_LIMIT, "group '" + path + "': its members would lie " + std::to_string(deepest) +
                             " levels deep; ckpt's NumPy reader reads at most " + std::to_string(kMaxDepth));
  }
  // An empty group is a directory entry, as zip records an empty folder.
  if (n_children == 0) {
    std::string dir;
    for (const auto& g : groups_) dir += g + "/";
    zip_->add(dir, std::span<const std::byte>{});
  }
}

void NumpyWriter::end_group() {
  if (!groups_.empty()) groups_.pop_back();
}

void NumpyWriter::attribute(std::string_view name, const ckpt_value&) {
  fail(CKPT_ERR_UNSUPPORTED, "attribute '" + path_of(name) + "': NumPy files hold arrays only (the format declares no attributes)");
}

void NumpyWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  const std::string path = path_of(info.name);
  if (!npy_descr(info.dtype))
    fail(CKPT_ERR_UNSUPPORTED, "tensor '" + path + "': NumPy has no dtype for " +
                                   (ckpt::sdk::dtype_name(info.dtype) ? ckpt::sdk::dtype_name(info.dtype) : "this dtype"));
  const std::string header = make_npy_header(info.dtype, info.shape);
  if (header.size() > kMaxHeaderText)
    fail(CKPT_ERR_UNSUPPORTED, "tensor '" + path + "': its .npy header would be " + std::to_string(header.size()) +
                                   " bytes, more than numpy.load reads without allow_pickle (" +
                                   std::to_string(kMaxHeaderText) + ")");
  ++tensors_;
  if (container_ == Container::npy) {
    if (tensors_ > 1)
      fail(CKPT_ERR_UNSUPPORTED, "tensor '" + path + "': a .npy file holds exactly one array and this document has more; "
                                                      "write a .npz (one member per tensor) instead");
    npy_->write(header);
    npy_->write(data.data(), data.size());
    return;
  }
  const std::string member = path + ".npy";
  // numpy.load's NpzFile looks a key up as a member name first: tensors 'x' and 'x.npy'
  // (members 'x.npy' and 'x.npy.npy') would give z['x.npy'] the array 'x'.
  auto clash = [](const std::string& a, const std::string& b) {
    fail(CKPT_ERR_UNSUPPORTED, "tensors '" + a + "' and '" + b + "': numpy.load would read key '" + b +
                                   "' as member '" + b + "' (tensor '" + a + "'), never as tensor '" + b +
                                   "' (member '" + b + ".npy'); rename one of them");
  };
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0 && members_.count(path))
    clash(path.substr(0, path.size() - 4), path);
  if (members_.count(member + ".npy")) clash(path, member);
  members_.insert(member);
  const std::span<const std::byte> head(reinterpret_cast<const std::byte*>(header.data()), header.size());
  if (!deflate_) {
    const std::span<const std::byte> parts[2] = {head, data};
    zip_->add(member, parts);
    return;
  }
  // np.savez_compressed's layout: each member deflated whole (zlib's default level, 6).
  std::vector<std::byte> whole(head.size() + data.size());
  std::memcpy(whole.data(), head.data(), head.size());
  if (!data.empty()) std::memcpy(whole.data() + head.size(), data.data(), data.size());
  std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> c(libdeflate_alloc_compressor(6),
                                                                           libdeflate_free_compressor);
  if (!c) fail(CKPT_ERR_OUT_OF_MEMORY, "libdeflate cannot allocate a compressor");
  std::vector<std::byte> out(libdeflate_deflate_compress_bound(c.get(), whole.size()));
  const size_t n = libdeflate_deflate_compress(c.get(), whole.data(), whole.size(), out.data(), out.size());
  if (n == 0) fail(CKPT_ERR_INTERNAL, "libdeflate could not compress member '" + member + "'");
  const uint32_t crc = static_cast<uint32_t>(libdeflate_crc32(0, whole.data(), whole.size()));
  zip_->add_deflated(member, std::span<const std::byte>(out.data(), n), whole.size(), crc);
}

void NumpyWriter::finish() {
  if (container_ == Container::npy) {
    if (tensors_ == 0)
      fail(CKPT_ERR_UNSUPPORTED, "a .npy file holds exactly one array and this document has none; write a .npz instead");
    npy_->close();
    return;
  }
  zip_->close();
}

}  // namespace ckpt_numpy
