// A pickle virtual machine that builds data and never runs code. It knows the opcodes of
// protocols 2 to 5 (and the few protocol 0/1 ones that still occur in binary pickles); every
// operation that would import, call or instantiate something is handed to a Policy, which
// emulates the handful of rebuilders it knows and refuses anything else by name.
#pragma once

#include "py_object.hpp"

#include <ckpt/sdk.hpp>

#include <span>
#include <string>

namespace ckpt_pickle {

// The bytes being unpickled and the read position; a policy may read raw data that follows
// an opcode (joblib writes array bytes between opcodes).
class Input {
 public:
  Input(std::span<const std::byte> bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}
  size_t pos() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }
  const std::string& source() const { return source_; }
  std::span<const std::byte> bytes() const { return bytes_; }
  // Takes n bytes; fails naming `what` when fewer remain.
  std::span<const std::byte> take(uint64_t n, const char* what);
  uint8_t byte(const char* what) { return static_cast<uint8_t>(take(1, what)[0]); }
  // A line ending in '\n' (text opcodes), without the newline.
  std::string_view line(const char* what);
  // "data.pkl, at byte 143: <what>", the pickle's own place for a message.
  std::string where(size_t at) const;
  [[noreturn]] void fail(ckpt_status_code code, size_t at, const std::string& what) const;

 private:
  std::span<const std::byte> bytes_;
  std::string source_;
  size_t pos_ = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  // GLOBAL and STACK_GLOBAL: what stands for module.name on the stack.
  virtual Obj* global(Arena& arena, const std::string& module, const std::string& name, Input& in, size_t at) = 0;
  // REDUCE: callable(*args).
  virtual Obj* reduce(Arena& arena, Obj* callable, Obj* args, Input& in, size_t at) = 0;
  // NEWOBJ and NEWOBJ_EX: cls.__new__(cls, *args).
  virtual Obj* newobj(Arena& arena, Obj* cls, Obj* args, Input& in, size_t at) = 0;
  // BUILD: sets `state` on `inst`; returns what then stands on the stack in its place.
  virtual Obj* build(Arena& arena, Obj* inst, Obj* state, Input& in, size_t at) = 0;
  // BINPERSID: an object stored outside the pickle (torch's storages).
  virtual Obj* persistent_load(Arena& arena, Obj* pid, Input& in, size_t at) = 0;
};

// The most objects one pickle may build (ckpt refuses more, whatever the pickle's size): writers
// of pickles (the pytorch plugin) refuse documents that would need more.
inline constexpr size_t kMaxObjects = size_t{1} << 22;

// Runs one pickle from the start of `in` to its STOP and returns the object it built.
// Throws ckpt::sdk::Error (CKPT_ERR_FORMAT for malformed input, CKPT_ERR_UNSUPPORTED for a
// refused global or an opcode ckpt does not run) naming the source and the byte offset.
Obj* unpickle(Input& in, Policy& policy, Arena& arena);

// torch.save's format before 1.6 (and with _use_new_zipfile_serialization=False): pickles one
// after another, the first of them torch's magic number, a 10-byte LONG1 (behind a FRAME from
// protocol 4). Both plugins recognise it: pickle to leave it alone, pytorch to refuse it.
bool is_legacy_torch(std::span<const uint8_t> head);

// "refused: os.system (...)": the error for anything a policy will not do.
[[noreturn]] void refuse(const Input& in, size_t at, std::string_view module, std::string_view name,
                         std::string_view why);

}  // namespace ckpt_pickle
