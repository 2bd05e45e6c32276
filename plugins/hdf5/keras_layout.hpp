// Keras' legacy HDF5 weight files (model.save("x.h5") and save_weights("x.h5")) seen as a
// checkpoint: a state dict with PyTorch names and layouts. The mapping is in docs/formats/hdf5.md.
#pragma once

#include "h5_tree.hpp"

#include <optional>
#include <vector>

namespace ckpt_hdf5 {

// The mapped document when `raw` (the file as stored) has Keras' layout and every weight it
// names is a tensor; nullopt otherwise, and then the file is listed as stored. Entries of
// transposed kernels get their permutation; `raw` keeps its ids.
std::optional<Tree> map_keras_layout(const Tree& raw, std::vector<TensorEntry>& entries);

}  // namespace ckpt_hdf5
