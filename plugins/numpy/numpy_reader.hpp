// Reads a .npy file (one array: the tensor "array" at the root) or a .npz archive (a zip of
// .npy members: "a/b.npy" is tensor b in group a; a directory entry "a/c/" is an empty group).
// Stored members of little-endian C-order arrays are mapped in place; big-endian or
// Fortran-order arrays are converted into the host's buffer, deflated members inflated into it.
#pragma once

#include "npy_header.hpp"

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>
#include <ckpt/sdk_limits.hpp>
#include <ckpt_zip/zip_archive.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ckpt_numpy {

// The document name of a .npy file's one array: fixed, so that it does not change when the
// file is renamed (docs/formats/numpy.md).
inline constexpr const char* kNpyTensorName = "array";

class NumpyReader final : public ckpt::sdk::Reader {
 public:
  NumpyReader(const std::string& path, const ckpt::sdk::ReadLimits& limits);
  void list(const ckpt::sdk::Visitor& visitor) override;
  void read_tensor(uint64_t id, std::span<std::byte> dst) override;
  const void* map_tensor(uint64_t id) override;

 private:
  struct Array {
    std::string where;                         // "member 'a/b.npy'" or "the array"
    const ckpt_zip::ZipEntry* entry = nullptr;  // null for a .npy file
    NpyHeader header;
    uint64_t data_at = 0;  // file offset of the data, when not deflated
    std::vector<std::byte> materialized;  // map_tensor's copy when the data is not mappable
    bool crc_checked = false;  // a stored member's CRC-32, checked once, before its data is first used
  };
  struct Node {
    std::string name;
    bool group = true;
    size_t array = 0;
    std::vector<size_t> children;
  };
  void read_npy();
  void read_npz(const ckpt::sdk::ReadLimits& limits);
  void parse_member(const ckpt_zip::ZipEntry& e);  // appends its Array
  void check_crc(Array& a);
  void list_node(size_t n, const ckpt::sdk::Visitor& visitor) const;
  Array& array(uint64_t id);
  bool mappable(const Array& a) const { return a.header.plain() && (!a.entry || a.entry->method == 0); }

  ckpt::sdk::MappedFile file_;
  std::optional<ckpt_zip::ZipReader> zip_;
  std::vector<Array> arrays_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
};

}  // namespace ckpt_numpy
