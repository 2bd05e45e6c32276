// torch.jit.save archives (TorchScript): beside data.pkl, which pickles the module tree as
// objects of __torch__.* classes, they hold code/ (the modules' Python source, which declares
// each class's __parameters__ and __buffers__), constants.pkl (tensors the code refers to, their
// bytes under constants/) and extra/ (the files the user passed as _extra_files). ckpt reads
// them without running anything: the parameters and buffers become the model's state under the
// names state_dict() gives them, and the rest is kept in extra/torchscript
// (docs/formats/pytorch.md, "TorchScript").
#pragma once

#include "py_to_doc.hpp"

#include <string>
#include <utility>
#include <vector>

namespace ckpt_pytorch {

struct TorchScriptParts {
  std::vector<std::pair<std::string, std::string>> code;         // path under the archive, text
  std::vector<std::pair<std::string, std::string>> extra_files;  // name under extra/, contents
  const ckpt_pickle::Obj* constants = nullptr;                   // constants.pkl's tuple
};

// The document of a TorchScript archive whose data.pkl unpickled to `root`.
ckpt_pickle::Node map_torchscript(const ckpt_pickle::Obj* root, const TorchScriptParts& parts,
                                  ckpt_pickle::DocBuilder& builder);

}  // namespace ckpt_pytorch
