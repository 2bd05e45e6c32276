// The object a torch.save file pickled, as its user laid it out. ckpt's document shows a
// checkpoint through its schema (model/state, optimizer, trainer: torch_layout.hpp), which is
// what ckpt's tools and the other formats use; the user's layout keeps what the schema does not
// say (their keys and the Python type of every value, OrderedDict's _metadata, Parameters,
// NumPy scalars and arrays, argparse.Namespace, tied tensors) so that writing back to .pt gives torch.load
// the object it read before. It travels in the document as JSON, meta/@torch_layout
// (docs/formats/pytorch.md, "The user's layout").
//
// A layout holds no tensor data: each of its tensors names the document path that holds the
// bytes. And it never overrides the document: a writer follows a layout only after reading
// the object it builds back through the schema mapping and finding exactly the document it was
// given (check_same_view), so torch.load and ckpt cannot read two different things.
#pragma once

#include "pickle_writer.hpp"
#include "py_object.hpp"
#include "py_to_doc.hpp"

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ckpt_pytorch {

inline constexpr const char* kLayoutAttribute = "torch_layout";
// Beside it, the tied tensors as the format-neutral meta/@tensor_aliases (docs/schema.md).
inline constexpr const char* kTensorAliasesAttribute = "tensor_aliases";

// Which document tensor the mapping made of each occurrence of an array, in the order the
// layout meets them (an array the pickle shares through its memo occurs more than once).
using DocPaths = std::unordered_map<const ckpt_pickle::Array*, std::vector<std::string>>;

// The DocPaths of a mapped document: each tensor's path, by the array its entry came from
// (`arrays[id]` for tensor id).
DocPaths doc_paths(const ckpt_pickle::Node& mapped, const std::vector<const ckpt_pickle::Array*>& arrays);

// Beside it, when the reader could not describe the object: why, and where in it
// ("data.pkl: ['cfg']: an object of class foo.Bar, ..."). A writer into .pt then lays the
// document out by ckpt's schema, which is not the object torch.save wrote: that is a loss, and
// it is named (convert's plan; the writer refuses a document that still carries the record).
inline constexpr const char* kLayoutLostAttribute = "torch_layout_lost";

// The layout of `root`, or nullopt when `root` holds something a layout does not describe (a
// big-endian or structured NumPy array, a global, an object of a class ckpt does not write
// back, a view of bytes the document does not hold) or when it would exceed `max_bytes`:
// ckpt's writer then lays the document out by its schema. `why`, when given, then says what
// and where ("['cfg']: an object of class foo.Bar, ..."). `bytes(a)` gives the bytes of a
// small tensor the mapping read as a number (torch's loss, Adam's step), which the layout
// holds by value.
std::optional<std::string> describe_layout(const ckpt_pickle::Obj* root, DocPaths paths,
                                           const std::function<std::vector<std::byte>(const ckpt_pickle::Array&)>& bytes,
                                           uint64_t max_bytes, std::string* why = nullptr);

// A parsed layout. Fails with CKPT_ERR_FORMAT naming `source` when it is not one.
class UserLayout {
 public:
  UserLayout(const std::string& json, const std::string& source);
  ~UserLayout();
  UserLayout(UserLayout&&) noexcept;
  UserLayout& operator=(UserLayout&&) noexcept;

  // Document paths of tensors that share the storage of an earlier one (tied weights), each
  // with the path of that earlier one.
  const std::unordered_map<std::string, std::string>& ties() const { return ties_; }
  // The paths those name: tensors others are tied to.
  bool is_leader(const std::string& path) const { return leaders_.count(path) > 0; }

  // The object the layout describes, built in `arena`. `tensor(path, leaf)` makes the array of
  // the document tensor at `path`; a tensor the layout holds by value becomes an array over a
  // Text of its bytes (Array::base), with `where` empty.
  ckpt_pickle::Obj* build(ckpt_pickle::Arena& arena,
                          const std::function<ckpt_pickle::Array*(const std::string& path)>& tensor) const;

 private:
  struct Parsed;
  std::unique_ptr<Parsed> parsed_;
  std::unordered_map<std::string, std::string> ties_;
  std::unordered_set<std::string> leaders_;
  std::string source_;
};

// `root` as the pickle writer writes it. `storage(a)` gives the storage key of a document
// tensor's array and writes the bytes of one held by value (Array::base is a Text);
// `numpy_bytes(a)` gives the bytes of a document tensor the layout makes a NumPy array, which
// the pickle holds inline.
PyOut to_pyout(const ckpt_pickle::Obj* root, const std::function<std::string(const ckpt_pickle::Array&)>& storage,
               const std::function<std::string(const ckpt_pickle::Array&)>& numpy_bytes);

// Fails with CKPT_ERR_FORMAT naming `source` unless `mapped` (what the schema mapping made of
// the object a layout builds, or of a file's data.pkl) is `view`: the same groups, attributes
// and tensors in the same order. `view` may hold more in its meta group than `mapped` (ckpt's
// own records: hashes, conversions, the layout itself), which torch never reads.
// `same_tensor(mapped_id, view_id, path)` compares one pair of tensors.
void check_same_view(const ckpt_pickle::Node& mapped, const ckpt_pickle::Node& view,
                     const std::function<bool(uint64_t mapped_id, uint64_t view_id)>& same_tensor,
                     const std::string& source);

}  // namespace ckpt_pytorch
