// PyTorch's checkpoint layouts and ckpt's schema, both ways (docs/formats/pytorch.md): a
// state dict, a checkpoint dict with model/model_state_dict, optimizer/optimizer_state_dict,
// epoch and loss, and torch's optimizer state ({state: {index: buffers}, param_groups}) against
// ckpt's optimizer group (state/<param name>/<buffer>), matched by parameter order.
#pragma once

#include "pickle_writer.hpp"
#include "py_to_doc.hpp"

namespace ckpt_pytorch {

// The document a torch object maps to.
ckpt_pickle::Node map_torch_object(const ckpt_pickle::Obj* root, ckpt_pickle::DocBuilder& builder);

// The torch object a document maps to; `tensor(id)` gives a tensor node's PyOut and `number`
// the PyOut of a float (a Python float, or a 0-d tensor under floats=tensor).
struct TorchWriteContext {
  std::function<PyOut(uint64_t tensor_id)> tensor;
  std::function<PyOut(double)> number;
  std::function<PyOut(float)> step_tensor;  // Adam's per-parameter step, a 0-d f32 tensor
};
PyOut torch_object(const ckpt_pickle::Node& root, const TorchWriteContext& ctx);

}  // namespace ckpt_pytorch
