// The records a reader adds to a document's meta group about the file it read, beside what the
// file holds (docs/schema.md, "Records of the reader"). They describe this reading of this file,
// so ckpt never carries them into a file it writes: a conversion names or drops them, and the
// output's own reader records what the output holds.
#pragma once

namespace ckpt::sdk {

// meta/@unread (string[]): what the reader found and could not represent, one entry per object,
// "<place>: <what>". A conversion counts each as a loss.
inline constexpr const char* kUnreadRecord = "unread";

// meta/@external_references (string[]): what a consumer of the file (h5py, ONNX Runtime, ...)
// reads from other files and the reader did not read, one entry per reference,
// "<place> -> <target>". Neither the file's bytes nor ckpt's manifest cover those bytes, so
// `ckpt sign` refuses such a file and `ckpt verify` names each reference. A reader that reads
// the referenced bytes itself (confined to the file's folder) lists them as tensors instead:
// the manifest then covers them.
inline constexpr const char* kExternalReferencesRecord = "external_references";

}  // namespace ckpt::sdk
