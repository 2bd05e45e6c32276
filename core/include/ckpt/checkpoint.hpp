// Checkpoint schema v1 (docs/schema.md): how a training checkpoint maps onto a document.
#pragma once

#include <ckpt/document.hpp>

#include <string>

namespace ckpt {

inline constexpr const char* kSchemaName = "ckpt.checkpoint";
inline constexpr int64_t kSchemaVersion = 1;

struct Checkpoint {
  // meta: producer and creation time are filled on save when empty; `user` holds the
  // caller's own key/values.
  std::string producer;
  std::string created;
  Group user;
  Group model_spec;   // the architecture as data
  Group model_state;  // named tensors, PyTorch naming and layouts
  Group optimizer;    // type, hyper-parameters, step, per-parameter state groups
  Group trainer;      // epoch, step, loss, metrics, RNG state, data position
  Group extra;        // anything else

  Document to_document() const;
  // Throws FormatError (naming `source`) when the document is not a schema-v1 checkpoint of a
  // version this build understands. Documents without meta (files written by other tools)
  // become a checkpoint whose model_state holds the root's tensors and whose extra holds the
  // rest.
  static Checkpoint from_document(Document doc, const std::string& source = "<document>");
};

// True when `doc` carries meta/schema = ckpt.checkpoint.
bool is_checkpoint(const Document& doc);

}  // namespace ckpt
