#include "pt_reader.hpp"

#include "policies.hpp"
#include "py_to_doc.hpp"
#include "skeleton.hpp"
#include "torch_layout.hpp"
#include "agreement.hpp"
#include "user_layout.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace ckpt_pytorch {

using ckpt::sdk::fail;
using namespace ckpt_pickle;

namespace {

// A deflated storage (torch never writes one, but zip tools may repack a file). Reads inflate
// the entry each time, holding only a window of it beside the destination: a storage inflated
// whole and then copied out cost twice the tensor. Only a view that is not dense (strided)
// needs the whole storage at once, and keeps it.
class InflatedBlob final : public Blob {
 public:
  InflatedBlob(const ZipReader& zip, const ZipEntry& e) : zip_(zip), e_(e) {}
  std::span<const std::byte> bytes() override {
    if (!done_) {
      data_.resize(e_.size);
      zip_.inflate_range(e_, 0, data_);
      done_ = true;
    }
    return data_;
  }
  void read(uint64_t offset, std::span<std::byte> dst) override {
    if (done_) return Blob::read(offset, dst);
    zip_.inflate_range(e_, offset, dst);
  }
  uint64_t size() const override { return e_.size; }
  bool in_file() const override { return false; }

 private:
  const ZipReader& zip_;
  ZipEntry e_;
  std::vector<std::byte> data_;
  bool done_ = false;
};

// torch sets a tensor's neg or conj bit from its serialization metadata (torch_policy.cpp):
// torch.load then gives -W, or W's conjugate, for the stored W. ckpt reads and hashes stored
// bytes as they are, so it refuses such a tensor rather than give, and vouch for, values torch
// does not read; a key torch does not know (torch.load fails on it) is refused too.
[[noreturn]] void refuse_torch_metadata(const Array& a, const std::string& path) {
  const std::string what = (path.empty() ? std::string("the root") : path.substr(0, 200)) + " (" + a.where +
                           "): the tensor carries torch serialization metadata " + a.torch_metadata;
  if (a.torch_metadata_unknown_key)
    fail(CKPT_ERR_UNSUPPORTED, what + ", with a key other than 'neg' and 'conj' (the bits torch sets from it): ckpt "
                                      "cannot tell what torch.load makes of the tensor, and refuses it");
  fail(CKPT_ERR_UNSUPPORTED, what + ": torch.load sets the tensor's negative ('neg') or conjugate ('conj') bit, so torch "
                                    "reads the negated or conjugated values of the stored bytes; ckpt does not apply "
                                    "these bits and refuses the tensor rather than read other values than torch");
}

}  // namespace

PtReader::PtReader(const std::string& path, const ckpt::sdk::ReadLimits& limits) : file_(path), zip_([&] {
  auto head = std::span(reinterpret_cast<const uint8_t*>(file_.data()), file_.size());
  if (is_legacy_torch(head))
    fail(CKPT_ERR_UNSUPPORTED,
         "a PyTorch file in the legacy format (torch before 1.6, or torch.save with "
         "_use_new_zipfile_serialization=False), which ckpt does not read: only torch can unpickle it, so load it "
         "in torch 1.6 or later and torch.save it again (the zip format)");
  return ZipReader(file_.bytes(), path);
}()) {
  if (zip_.entries().empty()) fail(CKPT_ERR_FORMAT, "an empty zip archive, not a torch.save file");
  const std::string& first = zip_.entries()[0].name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos) fail(CKPT_ERR_FORMAT, "zip entry '" + first + "' is not inside an archive folder");
  prefix_ = first.substr(0, slash + 1);
  const ZipEntry* pkl = zip_.find(prefix_ + "data.pkl");
  if (!pkl) fail(CKPT_ERR_FORMAT, "no " + prefix_ + "data.pkl: not a torch.save file");
  if (const ZipEntry* bo = zip_.find(prefix_ + "byteorder")) {
    std::vector<std::byte> scratch;
    auto b = zip_.contents(*bo, scratch, true);
    std::string order(reinterpret_cast<const char*>(b.data()), b.size());
    if (order != "little" && order != "big") fail(CKPT_ERR_FORMAT, prefix_ + "byteorder says '" + order + "'");
    // torch before 2.1 ignores this record and reads the storages as little-endian; later
    // versions swap them: a big-endian file has two readings, one per torch version.
    if (order == "big")
      fail(CKPT_ERR_UNSUPPORTED, prefix_ + "byteorder says 'big': torch before 2.1 reads such a file as little-endian, "
                                           "later torch as big-endian, so its data has no one reading");
  }
  // data.pkl is what torch.load reads, so it is always read, also when ckpt's own skeleton is
  // there: the two must agree (agreement.hpp).
  auto bytes = zip_.contents(*pkl, pickle_bytes_, true);
  Input in(bytes, prefix_ + "data.pkl");
  TorchPolicy policy;
  Obj* obj = unpickle(in, policy, arena_);
  if (in.left() != 0) in.fail(CKPT_ERR_FORMAT, in.pos(), std::to_string(in.left()) + " bytes after the pickle's STOP");
  const ZipEntry* sk = zip_.find(prefix_ + kSkeletonName);
  if (sk) {
    read_own_file(*sk, obj, path, limits);
    check_own_entries(path);
  } else {
    TorchScriptParts script;
    if (read_torchscript_parts(script, limits)) {
      std::vector<const Array*> arrays;
      root_ = map_pickle(obj, tensors_, arrays, limits, &script);
    } else {
      std::vector<const Array*> arrays;
      root_ = map_pickle(obj, tensors_, arrays, limits);
      keep_user_layout(obj, arrays, path, limits);
    }
  }
  check_expansion(tensors_, limits, "");
}

Node PtReader::map_pickle(const Obj* pickled, std::vector<TensorEntry>& entries, std::vector<const Array*>& arrays,
                          const ckpt::sdk::ReadLimits& limits, const TorchScriptParts* script) {
  std::unordered_map<const Text*, Blob*> blob_of;
  const size_t first_array = arrays.size(), first_entry = entries.size();
  DocBuilder builder(entries, [&](const Array& a) -> Blob* {
    arrays.push_back(&a);  // DocBuilder::tensor resolves each entry once, just before adding it
    if (const Storage* s = as_storage(a.base))
      return storage(s->key, s->numel * ckpt::sdk::dtype_size(s->dtype), a.where + " (" + s->type_name + ")", s->folder);
    // A NumPy array's bytes are inside data.pkl, which pickle_bytes_ or the mapping holds.
    const Text* t = as_text(a.base);
    if (!t) fail(CKPT_ERR_INTERNAL, a.where + ": an array without bytes");
    Blob*& b = blob_of[t];
    if (!b) b = numpy_blobs_.emplace_back(std::make_unique<TextBlob>(*t)).get();
    return b;
  }, limits.document_bytes_for(file_.size()));
  Node root = script ? map_torchscript(pickled, *script, builder) : map_torch_object(pickled, builder);
  // Each array resolved adds one entry, in the same order (DocBuilder::tensor).
  for (size_t i = first_array; i < arrays.size(); ++i)
    if (!arrays[i]->torch_metadata.empty()) refuse_torch_metadata(*arrays[i], entries.at(first_entry + i - first_array).path);
  return root;
}

std::vector<std::byte> PtReader::small_tensor_bytes(const Array& a) {
  const size_t n = ckpt::sdk::dtype_size(a.dtype);
  uint64_t numel = 1;
  for (int64_t d : a.shape) numel *= static_cast<uint64_t>(d);
  std::vector<std::byte> out(n * numel);
  if (numel == 0) return out;
  if (const Storage* s = as_storage(a.base)) {
    storage(s->key, s->numel * n, a.where, s->folder)->read(static_cast<uint64_t>(a.offset) * n, out);
  } else if (const Text* t = as_text(a.base); t && t->str().size() >= a.offset * n + out.size()) {
    std::memcpy(out.data(), t->str().data() + a.offset * n, out.size());
  }
  return out;
}

namespace {

bool contiguous_whole(const Array& a, const Storage& s) {
  int64_t step = 1;
  uint64_t numel = 1;
  for (size_t k = a.shape.size(); k-- > 0;) {
    if (a.shape[k] != 1 && a.strides[k] != step) return false;
    step *= std::max<int64_t>(a.shape[k], 1);
    numel *= static_cast<uint64_t>(a.shape[k]);
  }
  return a.offset == 0 && s.numel == numel && !a.numpy && s.dtype == a.dtype;
}

}  // namespace

void PtReader::keep_user_layout(const Obj* pickled, const std::vector<const Array*>& arrays, const std::string& path,
                                const ckpt::sdk::ReadLimits& limits) {
  // Would ckpt's writer give torch.load this very object? Only when nothing is tied and the
  // pickle holds nothing the schema leaves out (checked as a file ckpt wrote is).
  bool reproduced = true;
  std::unordered_set<std::string> keys;
  std::function<void(const Node&)> tied = [&](const Node& g) {
    for (const Node& c : g.children) {
      if (c.is_group) tied(c);
      else if (const Storage* s = as_storage(arrays.at(c.tensor_id)->base); s && !keys.insert(s->key).second) reproduced = false;
    }
  };
  tied(root_);
  if (reproduced) {
    try {
      TorchWriteContext ctx;
      ctx.tensor = [&](uint64_t id) {
        const Array* a = arrays.at(id);
        const Storage* s = as_storage(a->base);
        return PyOut::tensor(s ? s->key : std::string("\x01not a storage"), a->dtype, a->shape);
      };
      ctx.number = [](double f) { return any_storage_scalar(CKPT_DTYPE_F64, f); };
      ctx.step_tensor = [](float f) { return any_storage_scalar(CKPT_DTYPE_F32, f); };
      std::vector<std::byte> value;
      check_agreement(pickled, torch_object(root_, ctx), [&](const Array& a) -> std::span<const std::byte> {
        value = small_tensor_bytes(a);
        return value;
      }, path, false);
    } catch (const std::exception&) {
      reproduced = false;
    }
  }
  if (reproduced) return;  // nothing to record, and nothing lost: the schema's writer gives torch this object
  std::string why;
  auto layout = describe_layout(pickled, doc_paths(root_, arrays), [&](const Array& a) { return small_tensor_bytes(a); },
                                limits.document_bytes_for(file_.size()), &why);
  if (!layout) {
    // ckpt's writer would lay the document out by its schema, which torch.load reads as another
    // object than this file's: recorded, so that writing it to .pt names the loss
    // (docs/formats/pytorch.md, "The user's layout").
    put_in_meta(kLayoutLostAttribute, Value::string("data.pkl: " + why));
    return;
  }
  // Tied tensors, for formats that cannot share storage but can write one copy (safetensors):
  // pairs of a tensor's path and the path of the one it shares storage with, in path order.
  std::optional<Value> aliases;
  if (const UserLayout parsed(*layout, "'" + path + "': data.pkl"); !parsed.ties().empty()) {
    std::vector<std::pair<std::string, std::string>> pairs(parsed.ties().begin(), parsed.ties().end());
    std::sort(pairs.begin(), pairs.end());
    aliases.emplace();
    aliases->type = CKPT_VALUE_STRING_ARRAY;
    for (auto& [member, leader] : pairs) {
      aliases->strings.push_back(member);
      aliases->strings.push_back(leader);
    }
  }
  Node* meta = put_in_meta(kLayoutAttribute, Value::string(std::move(*layout)));
  if (meta && aliases && !meta->attribute(kTensorAliasesAttribute)) meta->set(kTensorAliasesAttribute, std::move(*aliases));
}

Node* PtReader::put_in_meta(const char* name, Value value) {
  if (Node* meta = root_.child("meta")) {
    // A tensor at the root named meta leaves no place for ckpt's records.
    if (!meta->is_group) return nullptr;
    meta->set(name, std::move(value));
    return meta;
  }
  // meta first, as ckpt's own documents have it, so that a writer knows the layout (and which
  // tensors are tied) before the tensors come.
  Node root;
  root.add_group("meta").set(name, std::move(value));
  for (auto& [k, v] : root_.attributes) root.set(k, std::move(v));
  for (Node& c : root_.children) root.add_child(std::move(c));
  root_ = std::move(root);
  return root_.child("meta");
}

void PtReader::read_own_file(const ZipEntry& skeleton, const Obj* pickled, const std::string& path,
                             const ckpt::sdk::ReadLimits& limits) {
  std::vector<std::byte> scratch;
  auto json = zip_.contents(skeleton, scratch, true);
  std::vector<SkeletonTensor> listed;
  root_ = read_skeleton(json, [&](const SkeletonTensor& t, const std::string& p) {
    TensorEntry e;
    e.path = p;
    e.dtype = t.dtype;
    e.shape = t.shape;
    e.strides.resize(t.shape.size());
    int64_t step = 1;
    for (size_t i = t.shape.size(); i-- > 0;) {
      e.strides[i] = step;
      step *= std::max<int64_t>(t.shape[i], 1);
    }
    const uint64_t n = e.nbytes();
    e.blob = storage(t.key, n, p);
    if (e.blob->size() != n)
      fail(CKPT_ERR_FORMAT, p + ": " + prefix_ + "data/" + t.key + " holds " + std::to_string(e.blob->size()) +
                                " bytes, the tensor " + std::to_string(n));
    tensors_.push_back(std::move(e));
    listed.push_back(t);
    return tensors_.size() - 1;
  });
  const Node* meta = root_.child("meta");
  if (const Value* layout = meta && meta->is_group ? meta->attribute(kLayoutAttribute) : nullptr) {
    // The writer followed the user's layout: data.pkl must read, through the same mapping as
    // any torch file, as exactly this document, and be laid out as the layout says.
    const std::string source = "'" + path + "': data.pkl";
    if (layout->type != CKPT_VALUE_STRING) fail(CKPT_ERR_FORMAT, "'" + path + "': meta/@torch_layout is not a string");
    std::vector<TensorEntry> entries;
    std::vector<const Array*> arrays;
    const Node mapped = map_pickle(pickled, entries, arrays, limits);
    // ckpt's writer rebuilds every tensor (also those read as numbers) from six arguments
    // (torch >= 2.0's 7th, metadata, can negate it) and a storage on 'cpu' (torch restores a
    // storage on the device its location names). entries[i] is arrays[i]'s.
    for (size_t i = 0; i < arrays.size(); ++i) {
      const Array& a = *arrays[i];
      const Storage* s = as_storage(a.base);
      std::string what;
      if (a.torch_metadata_arg)
        what = "a tensor with torch's metadata " + (a.torch_metadata.empty() ? std::string("(None or {})") : a.torch_metadata);
      else if (s && s->location != "cpu")
        what = "a storage on '" + s->location.substr(0, 64) + "'";
      if (!what.empty())
        fail(CKPT_ERR_FORMAT, source + " disagrees with ckpt/document.json at " + entries.at(i).path + " (" + a.where +
                                  "): " + what + ", which ckpt's writer never makes (torch.load would read something "
                                  "other than ckpt does; the file was changed after ckpt wrote it)");
    }
    std::vector<std::byte> stored;
    check_same_view(mapped, root_, [&](uint64_t mid, uint64_t vid) {
      const Array* a = arrays.at(mid);
      const SkeletonTensor& t = listed.at(vid);
      if (a->dtype != t.dtype || a->shape != t.shape) return false;
      if (const Storage* s = as_storage(a->base)) return s->key == t.key && contiguous_whole(*a, *s);
      // A NumPy array holds its bytes inside data.pkl, and the skeleton's storage holds them
      // for ckpt: torch and ckpt read the same values only if the two are equal.
      const Text* inline_bytes = as_text(a->base);
      const TensorEntry& e = tensors_.at(vid);
      if (!inline_bytes || !a->numpy || a->big_endian || a->offset != 0 || a->strides != e.strides ||
          inline_bytes->str().size() != e.nbytes())
        return false;
      stored.resize(e.nbytes());
      e.blob->read(0, stored);
      return stored.empty() || std::memcmp(stored.data(), inline_bytes->str().data(), stored.size()) == 0;
    }, source);
    std::string why;
    auto described = describe_layout(pickled, doc_paths(mapped, arrays), [&](const Array& a) { return small_tensor_bytes(a); },
                                     limits.document_bytes_for(file_.size()), &why);
    if (!described || *described != layout->s)
      fail(CKPT_ERR_FORMAT, source + " is not laid out as its meta/@torch_layout says" + (described ? "" : " (" + why + ")") +
                                " (torch.load would read something other than ckpt does; the file was changed after ckpt wrote it)");
    return;
  }
  // What ckpt's writer makes of this skeleton, with the storages it added for numbers left open.
  TorchWriteContext ctx;
  ctx.tensor = [&](uint64_t id) {
    const SkeletonTensor& t = listed.at(id);
    return PyOut::tensor(t.key, t.dtype, t.shape);
  };
  ctx.number = [](double f) { return PyOut::floating(f); };
  ctx.step_tensor = [](float f) { return any_storage_scalar(CKPT_DTYPE_F32, f); };
  const PyOut expected = torch_object(root_, ctx);
  std::array<std::byte, 8> value{};
  check_agreement(pickled, expected, [&](const Array& a) -> std::span<const std::byte> {
    const Storage* s = as_storage(a.base);
    const size_t n = ckpt::sdk::dtype_size(a.dtype);
    Blob* b = storage(s->key, n, a.where);
    b->read(0, std::span(value.data(), n));
    return std::span<const std::byte>(value.data(), n);
  }, path, true);
}

void PtReader::check_own_entries(const std::string& path) {
  // torch.load reads more of the archive than data.pkl and the storages: a constants.pkl makes
  // it hand the file to torch.jit.load, and later versions read .data/ records. A file ckpt
  // wrote holds what its writer makes and nothing else; the storages are those data.pkl and
  // the skeleton use, which the agreement check has just resolved (blobs_).
  auto refuse = [&](const std::string& what) {
    fail(CKPT_ERR_FORMAT, "'" + path + "': " + what + ", which ckpt's writer never makes (torch.load may read the file "
                                                      "otherwise than ckpt does; the file was changed after ckpt wrote it)");
  };
  if (prefix_ != "archive/") refuse("its archive folder is '" + prefix_.substr(0, 64) + "', not 'archive/'");
  for (const ZipEntry& e : zip_.entries()) {
    const std::string rel = e.name.starts_with(prefix_) ? e.name.substr(prefix_.size()) : std::string();
    if (rel == "data.pkl" || rel == "version" || rel == "byteorder" || rel == kSkeletonName) continue;
    if (rel.starts_with("data/") && blobs_.count(rel)) continue;
    refuse("it holds the zip entry '" + e.name.substr(0, 200) + "'");
  }
}

Blob* PtReader::storage(const std::string& key, uint64_t bytes, const std::string& what, const std::string& folder) {
  const std::string entry = folder + key;
  auto it = blobs_.find(entry);
  if (it == blobs_.end()) {
    const ZipEntry* e = zip_.find(prefix_ + entry);
    if (!e) fail(CKPT_ERR_FORMAT, what + ": storage '" + key + "' has no " + prefix_ + entry);
    std::unique_ptr<Blob> b;
    if (e->method == 0) b = std::make_unique<FileBlob>(file_, e->data_offset, e->size);
    else b = std::make_unique<InflatedBlob>(zip_, *e);
    it = blobs_.emplace(entry, std::move(b)).first;
  }
  if (it->second->size() < bytes)
    fail(CKPT_ERR_FORMAT, what + ": storage '" + key + "' needs " + std::to_string(bytes) + " bytes, " + prefix_ +
                              entry + " holds " + std::to_string(it->second->size()));
  return it->second.get();
}

bool PtReader::read_torchscript_parts(TorchScriptParts& parts, const ckpt::sdk::ReadLimits& limits) {
  const ZipEntry* constants = zip_.find(prefix_ + "constants.pkl");
  bool code = false;
  for (const ZipEntry& e : zip_.entries()) code |= e.name.rfind(prefix_ + "code/", 0) == 0;
  if (!constants && !code) return false;
  uint64_t text_bytes = 0;
  const uint64_t max_text = limits.document_bytes_for(file_.size());
  for (const ZipEntry& e : zip_.entries()) {
    const std::string rel = e.name.substr(prefix_.size());
    const bool is_code = rel.rfind("code/", 0) == 0 && !rel.ends_with(".debug_pkl") && !rel.ends_with("/");
    const bool is_extra = rel.rfind("extra/", 0) == 0 && !rel.ends_with("/");
    if (!is_code && !is_extra) continue;  // .debug_pkl: source ranges for error messages, not read
    if ((text_bytes += e.size) > max_text)
      fail(CKPT_ERR_LIMIT, prefix_ + "code/ and extra/ hold more than " + std::to_string(max_text) +
                               " bytes of text (option max_document_bytes)");
    std::vector<std::byte> scratch;
    auto b = zip_.contents(e, scratch, true);
    std::string text(reinterpret_cast<const char*>(b.data()), b.size());
    if (is_code) parts.code.emplace_back(rel, std::move(text));
    else parts.extra_files.emplace_back(rel.substr(6), std::move(text));
  }
  if (constants) {
    auto bytes = zip_.contents(*constants, constants_bytes_, true);
    Input in(bytes, prefix_ + "constants.pkl");
    TorchPolicy policy;
    Obj* c = unpickle(in, policy, arena_);
    if (in.left() != 0) in.fail(CKPT_ERR_FORMAT, in.pos(), std::to_string(in.left()) + " bytes after the pickle's STOP");
    const Seq* items = as_seq(c);
    if (!items || c->kind != Kind::tuple) fail(CKPT_ERR_FORMAT, prefix_ + "constants.pkl holds a " + std::string(kind_name(c->kind)) + ", not a tuple");
    // Their storages are under constants/, a namespace of its own.
    for (Obj* x : items->items)
      if (const Array* a = as_array(x))
        if (auto* s = const_cast<Storage*>(as_storage(a->base))) s->folder = "constants/";
    parts.constants = c;
  }
  return true;
}

void PtReader::list(const ckpt::sdk::Visitor& visitor) { list_tree(root_, visitor, tensors_); }

TensorEntry& PtReader::entry(uint64_t id) {
  if (id >= tensors_.size())
    fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " (the file holds " + std::to_string(tensors_.size()) + ")");
  return tensors_[id];
}

void PtReader::read_tensor(uint64_t id, std::span<std::byte> dst) { entry(id).copy_to(dst); }

const void* PtReader::map_tensor(uint64_t id) { return entry(id).map(); }

}  // namespace ckpt_pytorch
