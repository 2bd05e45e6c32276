#include "pickle_reader.hpp"

#include "compressed.hpp"
#include "policies.hpp"
#include "py_to_doc.hpp"
#include "unpickler.hpp"

#include <algorithm>
#include <unordered_map>

namespace ckpt_pickle {

using ckpt::sdk::fail;

PickleReader::PickleReader(const std::string& path, const ckpt::sdk::ReadLimits& limits, std::optional<uint64_t> max_decompressed)
    : file_(path) {
  std::span<const std::byte> bytes = file_.bytes();
  const auto head = std::span(reinterpret_cast<const uint8_t*>(bytes.data()), std::min<size_t>(bytes.size(), 16));
  const Container container = container_of(head);
  std::string what = "the pickle";
  if (container != Container::none) {
    // Decompressed whole when the file opens, so bounded by the file: a pickle of real data
    // compresses a few times (float arrays hardly at all), while a megabyte of zlib holds a
    // gigabyte of zeros and one of bz2 far more.
    const unsigned __int128 bound = static_cast<unsigned __int128>(bytes.size()) * kMaxCompressionRatio + kDecompressedBase;
    inflated_ = decompress(container, bytes, max_decompressed.value_or(static_cast<uint64_t>(std::min<unsigned __int128>(bound, UINT64_MAX))));
    bytes = inflated_;
    what = std::string("the ") + container_name(container) + "-compressed pickle";
  }
  Input in(bytes, what);
  NumpyPolicy policy;
  Obj* obj = unpickle(in, policy, arena_);
  if (in.left() != 0)
    in.fail(CKPT_ERR_FORMAT, in.pos(),
            std::to_string(in.left()) + " bytes after the pickle's STOP (a file of several pickles is not read)");
  std::unordered_map<const Obj*, Blob*> blob_of;  // one blob per array base, however often shared
  DocBuilder builder(tensors_, [&](const Array& a) -> Blob* {
    const Text* t = as_text(a.base);
    if (!t) fail(CKPT_ERR_INTERNAL, a.where + ": an array without bytes");
    if (auto it = blob_of.find(t); it != blob_of.end()) return it->second;
    // Bytes the pickle holds verbatim are read from the file; others from the arena.
    const auto* p = reinterpret_cast<const std::byte*>(t->str().data());
    const auto file = file_.bytes();
    if (p >= file.data() && p + t->str().size() <= file.data() + file.size() && !t->str().empty())
      blobs_.push_back(std::make_unique<FileBlob>(file_, static_cast<uint64_t>(p - file.data()), t->str().size()));
    else
      blobs_.push_back(std::make_unique<TextBlob>(*t));
    return blob_of[t] = blobs_.back().get();
  }, limits.document_bytes_for(file_.size()));  // the file's size: compression buys no budget
  if (obj->kind == Kind::array && !static_cast<const Array*>(obj)->scalar) builder.put(root_, "array", obj, "", 0);
  else builder.fill(root_, obj, "", 0);
  check_expansion(tensors_, limits, "");
  name_nones(builder.nones());
}

// A document has no null: the None values the pickle held are left out and named in
// meta/@unread, so that a conversion names each as a loss (docs/schema.md) instead of
// dropping it silently (a scikit-learn estimator's class_weight=None, random_state=None). A
// checkpoint dict the host's torch-checkpoint layout maps carries the list into the schema's meta.
void PickleReader::name_nones(const std::vector<std::string>& nones) {
  if (nones.empty()) return;
  std::vector<std::string> unread;
  for (const auto& p : nones) unread.push_back(p + ": None, left out: a document has no null");
  Node* meta = root_.child("meta");
  // The pickle's own member named meta: the list goes there unless it is no group or already
  // has an attribute unread, which would take the list's place; then the Nones cannot be named.
  if (meta && (!meta->is_group || meta->attribute("unread"))) {
    std::string list;
    for (const auto& p : nones) list += (list.empty() ? "" : ", ") + p;
    fail(CKPT_ERR_UNSUPPORTED, "the pickle holds None at " + list + ", which a document cannot hold, and its own member 'meta"
                               + std::string(meta->is_group ? "/unread" : "") + "' takes the place where ckpt names them");
  }
  if (!meta) meta = &root_.add_group("meta");
  Value v;
  v.type = CKPT_VALUE_STRING_ARRAY;
  v.strings = std::move(unread);
  meta->set("unread", std::move(v));
}

void PickleReader::list(const ckpt::sdk::Visitor& visitor) { list_tree(root_, visitor, tensors_); }

TensorEntry& PickleReader::entry(uint64_t id) {
  if (id >= tensors_.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " (the file holds " + std::to_string(tensors_.size()) + ")");
  return tensors_[id];
}

void PickleReader::read_tensor(uint64_t id, std::span<std::byte> dst) { entry(id).copy_to(dst); }

const void* PickleReader::map_tensor(uint64_t id) { return entry(id).map(); }

}  // namespace ckpt_pickle
