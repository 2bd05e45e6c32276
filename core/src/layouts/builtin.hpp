// The layouts ckpt ships (core/src/layouts/), made once by layout_adapters().
#pragma once

#include <ckpt/layout.hpp>

#include <memory>

namespace ckpt::layouts {

// ONNX graphs of sequential models <-> model/spec (onnx_sequential.cpp).
std::shared_ptr<const LayoutAdapter> onnx_sequential();
// Files the hdf5 plugin lists as stored; Keras' legacy weight files -> model/state
// (keras_legacy.cpp).
std::shared_ptr<const LayoutAdapter> keras_legacy_h5();
// Checkpoint dicts of PyTorch's and MegEngine's guides listed as plain Python data (a pickle)
// -> the schema (torch_checkpoint.cpp).
std::shared_ptr<const LayoutAdapter> torch_checkpoint();

}  // namespace ckpt::layouts
