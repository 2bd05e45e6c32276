// What a restricted unpickler may do, as Policies: rebuild NumPy arrays inside plain Python
// data and objects (NumpyPolicy, the pickle format), and on top of that PyTorch's tensors and
// storages (TorchPolicy, .pt files). Everything else is refused by name.
#pragma once

#include "unpickler.hpp"

#include <string>
#include <unordered_map>
#include <utility>

namespace ckpt_pickle {

// NumPy arrays (numpy.core.multiarray._reconstruct and the ndarray state, _frombuffer,
// numpy.dtype, numpy scalars), joblib's NumpyArrayWrapper with the array bytes that follow
// it, OrderedDict, bytes. An object of any other class is not instantiated: NEWOBJ (and
// copyreg._reconstructor) make a Record of the attributes BUILD gives it. Calling anything
// else (REDUCE) is refused by name.
class NumpyPolicy final : public Policy {
 public:
  Obj* global(Arena& arena, const std::string& module, const std::string& name, Input& in, size_t at) override;
  Obj* reduce(Arena& arena, Obj* callable, Obj* args, Input& in, size_t at) override;
  Obj* newobj(Arena& arena, Obj* cls, Obj* args, Input& in, size_t at) override;
  Obj* build(Arena& arena, Obj* inst, Obj* state, Input& in, size_t at) override;
  Obj* persistent_load(Arena& arena, Obj* pid, Input& in, size_t at) override;
};

// What NumpyPolicy (above) reads, plus tensors rebuilt by torch._utils._rebuild_tensor_v2
// (and _rebuild_tensor, _rebuild_parameter), storages of the ten dtypes ckpt holds as
// persistent ids, and nn.Parameter. One policy for both pickle readers: a .pt file may hold
// NumPy scalars and arrays, and objects (argparse.Namespace, read as records), as the pickle
// format's files may. Instances of classes from __main__ or torch (a pickled model:
// torch.save(model)) are refused, naming state_dict() as the way to save it.
class TorchPolicy final : public Policy {
 public:
  Obj* global(Arena& arena, const std::string& module, const std::string& name, Input& in, size_t at) override;
  Obj* reduce(Arena& arena, Obj* callable, Obj* args, Input& in, size_t at) override;
  Obj* newobj(Arena& arena, Obj* cls, Obj* args, Input& in, size_t at) override;
  Obj* build(Arena& arena, Obj* inst, Obj* state, Input& in, size_t at) override;
  Obj* persistent_load(Arena& arena, Obj* pid, Input& in, size_t at) override;

 private:
  NumpyPolicy numpy_;
  std::unordered_map<std::string, std::pair<uint32_t, uint64_t>> storages_;  // key -> dtype, numel
};

// Checks an array's view against the number of elements its base holds; fails naming `in`.
void check_array_bounds(const Array& a, uint64_t base_elements, const Input& in, size_t at);

// ckpt's dtype for a torch storage class name ("FloatStorage"), 0 if ckpt holds none.
uint32_t torch_storage_dtype(std::string_view storage_class);
// The torch storage class name for a ckpt dtype.
const char* torch_storage_name(uint32_t dtype);

}  // namespace ckpt_pickle
