// What the reader lists: the document's tree (ckpt::sdk::Tree: names, attribute values, tensor
// ids), gathered from the file's metadata once and replayed to every visitor, and per tensor id
// where its bytes are and how to lay them out.
#pragma once

#include "h5_attributes.hpp"

#include <ckpt/sdk_tree.hpp>

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ckpt_hdf5 {

using ckpt::sdk::Tree;

struct TensorEntry {
  haddr_t addr = HADDR_UNDEF;  // the dataset's object header: names are never parsed again
  std::string where;           // the dataset's path in the file, for messages
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  // Where the bytes lie in the file as the tensor's own (contiguous, written, and stored in the
  // very type the tensor is read as), so that a read is one pread; else kNotRaw.
  static constexpr uint64_t kNotRaw = UINT64_MAX;
  uint64_t raw_offset = kNotRaw;
  // External storage (read only with external=inside): the bytes, in order, as pieces of files
  // beside this one, each opened (confined to the folder) when the dataset was listed.
  struct Piece {
    int fd = -1;  // owned by the reader
    std::string name;
    uint64_t offset = 0, size = 0;
  };
  std::vector<Piece> external;
  // A column of a compound dataset: the field it reads (empty for a whole dataset), through a
  // memory type of that one field.
  std::string member;
  // The dtype attribute (kDtypeAttr) as listed, empty for none: reads do not read it again.
  std::string marker;
};

}  // namespace ckpt_hdf5
