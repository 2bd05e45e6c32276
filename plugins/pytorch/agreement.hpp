// A file ckpt wrote holds its document twice: ckpt/document.json (the skeleton ckpt reads) and
// data.pkl (what torch.load reads). If the two could differ, a file would load one set of
// weights in torch and another in ckpt, and a hash or signature checked by ckpt would vouch for
// what torch never sees. So before the skeleton is used, data.pkl is unpickled (by the
// restricted unpickler: nothing runs) and compared with what ckpt's writer makes of the
// skeleton: the same objects in the same order, every value equal, every tensor the same
// storage entry with the same dtype, shape and layout. Any difference refuses the file.
#pragma once

#include "pickle_writer.hpp"
#include "py_object.hpp"

#include <functional>
#include <span>
#include <string>

namespace ckpt_pytorch {

// Placeholders the comparison accepts in `expected`: a PyOut tensor with an empty storage key
// stands for a 0-d tensor of its dtype holding `f` in any storage (ckpt's writer adds those
// storages for floats and Adam's step as it goes, so their keys are not in the skeleton).
inline PyOut any_storage_scalar(uint32_t dtype, double value) {
  PyOut t = PyOut::tensor("", dtype, {});
  t.f = value;
  return t;
}

// `scalar_bytes` gives the bytes of a 0-d tensor (for comparing values). Fails with
// CKPT_ERR_FORMAT naming `source`, the place in the object tree and what differs. `own_file`:
// `actual` is the data.pkl of a file ckpt wrote, whose tensors must also be rebuilt exactly as
// ckpt's writer rebuilds them (six arguments, no torch metadata) from storages on 'cpu'; for a
// torch file whose layout ckpt's writer may reproduce, those do not change what torch reads.
void check_agreement(const ckpt_pickle::Obj* actual, const PyOut& expected,
                     const std::function<std::span<const std::byte>(const ckpt_pickle::Array&)>& scalar_bytes,
                     const std::string& source, bool own_file);

}  // namespace ckpt_pytorch
