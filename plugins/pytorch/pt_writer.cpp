#include "pt_writer.hpp"

#include "policies.hpp"
#include "torch_layout.hpp"
#include "unpickler.hpp"

#include <sodium.h>
#include <xxhash.h>

#include <cstring>

namespace ckpt_pytorch {

using ckpt::sdk::fail;
using namespace ckpt_pickle;

namespace {

// Equal tensors are found by a hash of their first and last 4 KiB (and their size), then their
// bytes compared: hashing every byte of every tensor cost more than the write it saves.
uint64_t sampled_hash(std::span<const std::byte> data) {
  constexpr size_t kEdge = 4096;
  if (data.size() <= 2 * kEdge) return XXH3_64bits(data.data(), data.size());
  return XXH3_64bits_withSeed(data.data(), kEdge, XXH3_64bits(data.data() + data.size() - kEdge, kEdge) ^ data.size());
}

constexpr const char* kArchive = "archive/";

Value owned(const ckpt_value& v) {
  Value a;
  a.type = v.type;
  switch (v.type) {
    case CKPT_VALUE_BOOL: a.b = v.u.b != 0; break;
    case CKPT_VALUE_INT64: a.i = v.u.i; break;
    case CKPT_VALUE_FLOAT64: a.f = v.u.f; break;
    case CKPT_VALUE_STRING: a.s.assign(v.u.s.data, v.u.s.size); break;
    case CKPT_VALUE_BOOL_ARRAY: a.bools.assign(v.u.bools, v.u.bools + v.count); break;
    case CKPT_VALUE_INT64_ARRAY: a.ints.assign(v.u.ints, v.u.ints + v.count); break;
    case CKPT_VALUE_FLOAT64_ARRAY: a.floats.assign(v.u.floats, v.u.floats + v.count); break;
    case CKPT_VALUE_STRING_ARRAY:
      for (uint64_t i = 0; i < v.count; ++i) a.strings.emplace_back(v.u.strings[i].data, v.u.strings[i].size);
      break;
    default: fail(CKPT_ERR_INVALID_ARGUMENT, "an attribute of unknown type " + std::to_string(v.type));
  }
  return a;
}

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

PtWriter::PtWriter(const std::string& path, bool floats_as_tensors, bool always_zip64, bool later_torch)
    : zip_(path, always_zip64), floats_as_tensors_(floats_as_tensors), later_torch_(later_torch) {}

void PtWriter::check_torch_storage(uint32_t dtype, const std::string& path) const {
  if (later_torch_) return;
  const char* since = nullptr;
  const char* instead = nullptr;
  switch (dtype) {
    case CKPT_DTYPE_U16: since = "2.3", instead = "i32"; break;
    case CKPT_DTYPE_U32: since = "2.3", instead = "i64"; break;
    case CKPT_DTYPE_U64: since = "2.3", instead = "i64 (values below 2^63)"; break;
    case CKPT_DTYPE_F8_E4M3FN:
    case CKPT_DTYPE_F8_E5M2: since = "2.1", instead = "f16"; break;
    default: return;
  }
  const char* storage = torch_storage_name(dtype);
  fail(CKPT_ERR_UNSUPPORTED, "tensor '" + path.substr(0, 200) + "': dtype " + ckpt::sdk::dtype_name(dtype) + " is torch." +
                                 (storage ? storage : "?") + ", which torch before " + since + " does not have: torch 1.13 "
                                 "(Debian's) cannot load a file holding one (write option torch=1.13 refuses it). "
                                 "For torch 1.13, cast the tensor to " + instead + " first; for torch " + since +
                                 " and later, write without torch=1.13");
}

Node& PtWriter::top(const char* event) {
  if (stack_.empty() || finished_) fail(CKPT_ERR_INVALID_ARGUMENT, std::string(event) + " outside the root group");
  return *stack_.back();
}

void PtWriter::begin_group(std::string_view name, uint64_t, uint64_t) {
  if (stack_.empty()) {
    if (root_done_ || !name.empty()) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group: the document has one root, named \"\"");
    root_done_ = true;
    stack_.push_back(&root_);
    return;
  }
  Node& parent = top("begin_group");
  if (stack_.size() > kMaxGroupDepth)
    fail(CKPT_ERR_LIMIT, "group '" + current_path(name) + "': groups nested deeper than " + std::to_string(kMaxGroupDepth) +
                             " levels, which ckpt's PyTorch reader refuses (" + kSkeletonName + ")");
  if (parent.child(name)) fail(CKPT_ERR_INVALID_ARGUMENT, "begin_group: '" + std::string(name) + "' twice in one group");
  stack_.push_back(&parent.add_group(std::string(name)));
}

void PtWriter::end_group() {
  top("end_group");
  stack_.pop_back();
}

void PtWriter::attribute(std::string_view name, const ckpt_value& value) {
  Node& g = top("attribute");
  if (g.attribute(name)) fail(CKPT_ERR_INVALID_ARGUMENT, "attribute '" + std::string(name) + "' twice in one group");
  g.set(std::string(name), owned(value));
  if (stack_.size() == 2 && g.name == "meta" && name == kLayoutAttribute && value.type == CKPT_VALUE_STRING)
    layout_.emplace(g.attribute(name)->s, "meta/@" + std::string(kLayoutAttribute));
}

std::string PtWriter::current_path(std::string_view name) const {
  std::string p;
  for (size_t i = 1; i < stack_.size(); ++i) p += stack_[i]->name + "/";
  return p + std::string(name);
}

std::string PtWriter::add_storage(std::span<const std::byte> data, uint64_t* offset) {
  std::string key = std::to_string(next_key_++);
  const uint64_t at = zip_.add(kArchive + std::string("data/") + key, data);
  if (offset) *offset = at;
  offset_of_.emplace(key, at);
  return key;
}

void PtWriter::resolve_copies() {
  std::vector<std::byte> buf;
  for (const auto& [index, stored] : copies_) {
    SkeletonTensor& t = tensors_[index];
    // The layout ties this tensor to one of the same bytes: that one's storage (its own
    // resolved before, being earlier).
    if (layout_) {
      const std::string& path = path_of_[index];
      if (auto tie = layout_->ties().find(path); tie != layout_->ties().end()) {
        auto leader = tensor_at_.find(tie->second);
        if (leader != tensor_at_.end() && leader->second < index && first_of_[leader->second] == stored.tensor &&
            tensors_[leader->second].dtype == t.dtype && tensors_[leader->second].shape == t.shape) {
          t.key = tensors_[leader->second].key;
          continue;
        }
      }
    }
    buf.resize(ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), path_of_[index]));
    zip_.read_back(stored.offset, buf);
    t.key = add_storage(buf);
  }
  copies_.clear();
  if (!layout_) return;
  for (const auto& [member, leader] : layout_->ties()) {
    auto m = tensor_at_.find(member), l = tensor_at_.find(leader);
    if (m != tensor_at_.end() && l != tensor_at_.end() && tensors_[m->second].key != tensors_[l->second].key)
      fail(CKPT_ERR_INVALID_ARGUMENT, "meta/@" + std::string(kLayoutAttribute) + " ties '" + member + "' to '" + leader +
                                          "', but their bytes differ");
  }
}

void PtWriter::tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) {
  Node& g = top("tensor");
  if (g.child(info.name)) fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(info.name) + "' twice in one group");
  if (!ckpt::sdk::dtype_size(info.dtype)) fail(CKPT_ERR_UNSUPPORTED, "tensor '" + std::string(info.name) + "': unknown dtype");
  const uint64_t n = ckpt::sdk::checked_nbytes(info.shape, ckpt::sdk::dtype_size(info.dtype), std::string(info.name));
  if (n != data.size()) fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(info.name) + "': shape and byte count disagree");
  SkeletonTensor t;
  t.dtype = info.dtype;
  t.shape.assign(info.shape.begin(), info.shape.end());
  const std::string path = current_path(info.name);
  if (layout_) {
    auto digest = [&] {
      std::array<unsigned char, 32> d;
      crypto_generichash(d.data(), d.size(), reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
      return d;
    };
    if (auto tie = layout_->ties().find(path); tie != layout_->ties().end()) {
      auto leader = tensor_at_.find(tie->second);
      if (leader != tensor_at_.end() && tensors_[leader->second].dtype == t.dtype && tensors_[leader->second].shape == t.shape) {
        t.key = tensors_[leader->second].key;
        digests_[path] = digest();
        tied_.emplace_back(path, tie->second);
      }
    } else if (layout_->is_leader(path)) {
      digests_[path] = digest();
    }
  }
  const size_t index = tensors_.size();
  tensor_at_[path] = index;
  path_of_.push_back(path);
  first_of_.push_back(index);
  if (!layout_ && t.key.empty()) {
    // No layout yet: a tensor of the same bytes as an earlier one may turn out to be tied to it.
    // Keyed by dtype and shape too: a bucket then holds only tensors that can be equal.
    const uint64_t h = XXH3_64bits_withSeed(t.shape.data(), t.shape.size() * sizeof(int64_t),
                                            sampled_hash(data) ^ t.dtype);
    std::vector<Stored>& same = by_content_[h];
    std::vector<std::byte> back;
    for (const Stored& s : same) {
      const SkeletonTensor& o = tensors_[s.tensor];
      if (o.dtype != t.dtype || o.shape != t.shape) continue;
      back.resize(data.size());
      zip_.read_back(s.offset, back);
      if (!data.empty() && std::memcmp(back.data(), data.data(), data.size()) != 0) continue;
      t.key = o.key;
      first_of_[index] = s.tensor;
      copies_.emplace_back(index, s);
      break;
    }
    if (t.key.empty()) {
      Stored& s = same.emplace_back(Stored{index});
      t.key = add_storage(data, &s.offset);
    }
  }
  if (t.key.empty()) t.key = add_storage(data);
  tensors_.push_back(std::move(t));
  g.add_tensor(std::string(info.name), tensors_.size() - 1);
}

namespace {
// Objects the pickle of `g` builds, roughly: one per value and array element, a dozen per tensor.
uint64_t pickle_objects(const ckpt_pickle::Node& g) {
  uint64_t n = 2;
  for (const auto& [k, v] : g.attributes) n += 2 + v.bools.size() + v.ints.size() + v.floats.size() + v.strings.size();
  for (const ckpt_pickle::Node& c : g.children) n += c.is_group ? pickle_objects(c) : 12;
  return n;
}
}  // namespace

void PtWriter::finish() {
  if (!root_done_ || !stack_.empty() || finished_) fail(CKPT_ERR_INVALID_ARGUMENT, "finish before the root group was closed");
  finished_ = true;
  // A file every reader of ckpt's would refuse is not written (and its pickle not built).
  if (const uint64_t n = pickle_objects(root_); n > ckpt_pickle::kMaxObjects)
    fail(CKPT_ERR_UNSUPPORTED, "the document would pickle to some " + std::to_string(n) + " Python objects; readers of .pt "
                                   "files (ckpt's included) refuse more than " + std::to_string(ckpt_pickle::kMaxObjects));
  TorchWriteContext ctx;
  ctx.tensor = [&](uint64_t id) {
    const SkeletonTensor& t = tensors_.at(id);
    check_torch_storage(t.dtype, id < path_of_.size() ? path_of_[id] : std::to_string(id));
    return PyOut::tensor(t.key, t.dtype, t.shape);
  };
  ctx.number = [&](double f) {
    if (!floats_as_tensors_) return PyOut::floating(f);
    return PyOut::tensor(add_storage(std::as_bytes(std::span(&f, 1))), CKPT_DTYPE_F64, {});
  };
  ctx.step_tensor = [&](float f) { return PyOut::tensor(add_storage(std::as_bytes(std::span(&f, 1))), CKPT_DTYPE_F32, {}); };
  const Node* meta = root_.child("meta");
  const Value* layout = meta && meta->is_group ? meta->attribute(kLayoutAttribute) : nullptr;
  if (layout && layout->type != CKPT_VALUE_STRING)
    fail(CKPT_ERR_INVALID_ARGUMENT, "meta/@" + std::string(kLayoutAttribute) + " is not a string");
  if (layout && !layout_) layout_.emplace(layout->s, "meta/@" + std::string(kLayoutAttribute));
  // The document came from a torch file whose object the reader could not record: written by
  // the schema, torch.load would read another object than the one torch.save wrote. That is
  // a loss, which convert names (and, allowed, takes the record out); a writer handed the record
  // has not named it, and refuses.
  if (const Value* lost = meta && meta->is_group && !layout ? meta->attribute(kLayoutLostAttribute) : nullptr) {
    const std::string why = lost->type == CKPT_VALUE_STRING ? lost->s.substr(0, 1000) : std::string("(not a string)");
    fail(CKPT_ERR_UNSUPPORTED, "meta/@" + std::string(kLayoutLostAttribute) + ": the document comes from a torch file whose "
                               "object ckpt could not record (" + why + "); written to .pt it would take ckpt's "
                               "checkpoint layout, and torch.load would read another object than the one torch.save "
                               "wrote. ckpt convert names this loss (--allow-lossy writes it); to write the document "
                               "as it is, remove the attribute");
  }
  resolve_copies();
  const std::string pkl = pickle(layout ? followed_layout() : torch_object(root_, ctx));
  zip_.add(kArchive + std::string("data.pkl"), bytes_of(pkl));
  zip_.add(kArchive + std::string("version"), bytes_of("3\n"));
  zip_.add(kArchive + std::string("byteorder"), bytes_of("little"));
  const std::string skeleton = write_skeleton(root_, tensors_);
  zip_.add(kArchive + std::string(kSkeletonName), bytes_of(skeleton));
  zip_.close();
}

namespace {

// A document tensor in the object a layout builds: the writer's check never reads its bytes.
class PathBlob final : public Blob {
 public:
  explicit PathBlob(uint64_t size) : size_(size) {}
  std::span<const std::byte> bytes() override {
    fail(CKPT_ERR_INVALID_ARGUMENT, "meta/@torch_layout puts a tensor of the document where torch's checkpoint holds a number");
  }
  uint64_t size() const override { return size_; }

 private:
  uint64_t size_;
};

void tensor_paths(const Node& g, const std::string& prefix, std::vector<std::string>& out) {
  for (const Node& c : g.children) {
    const std::string p = prefix.empty() ? c.name : prefix + "/" + c.name;
    if (c.is_group) {
      tensor_paths(c, p, out);
    } else {
      if (out.size() <= c.tensor_id) out.resize(c.tensor_id + 1);
      out[c.tensor_id] = p;
    }
  }
}

}  // namespace

PyOut PtWriter::followed_layout() {
  Node* meta = root_.child("meta");
  const std::string source = "meta/@" + std::string(kLayoutAttribute);
  if (!layout_) layout_.emplace(meta->attribute(kLayoutAttribute)->s, source);
  for (const auto& [member, leader] : tied_) {
    auto m = digests_.find(member), l = digests_.find(leader);
    if (m == digests_.end() || l == digests_.end() || m->second != l->second)
      fail(CKPT_ERR_INVALID_ARGUMENT, source + " ties '" + member + "' to '" + leader + "', but their bytes differ");
  }
  std::vector<std::string> path_of;
  tensor_paths(root_, "", path_of);
  std::unordered_map<std::string, uint64_t> id_of;
  for (uint64_t id = 0; id < path_of.size(); ++id) id_of.emplace(path_of[id], id);
  Arena arena;
  std::unordered_map<std::string, Storage*> storages;
  Obj* built = layout_->build(arena, [&](const std::string& p) -> Array* {
    auto it = id_of.find(p);
    if (it == id_of.end()) fail(CKPT_ERR_INVALID_ARGUMENT, source + " names a tensor '" + p.substr(0, 200) + "' the document does not hold");
    const SkeletonTensor& t = tensors_.at(it->second);
    auto* a = arena.make<Array>();
    a->dtype = t.dtype;
    a->shape = t.shape;
    a->strides.resize(t.shape.size());
    int64_t step = 1;
    uint64_t numel = 1;
    for (size_t k = t.shape.size(); k-- > 0;) {
      a->strides[k] = step;
      step *= std::max<int64_t>(t.shape[k], 1);
      numel *= static_cast<uint64_t>(t.shape[k]);
    }
    Storage*& s = storages[t.key];
    if (!s) {
      s = arena.make<Storage>();
      s->key = t.key;
      s->dtype = t.dtype;
      s->numel = numel;
    }
    a->base = s;
    a->where = p;
    return a;
  });
  // Read back through the schema mapping, the object must be this document: otherwise the
  // file would hold one thing for torch and another for ckpt.
  std::vector<TensorEntry> entries;
  std::vector<const Array*> arrays;
  std::vector<std::unique_ptr<Blob>> blobs;
  DocBuilder builder(entries, [&](const Array& a) -> Blob* {
    arrays.push_back(&a);
    if (const Text* t = as_text(a.base)) return blobs.emplace_back(std::make_unique<TextBlob>(*t)).get();
    return blobs.emplace_back(std::make_unique<PathBlob>(a.shape.empty() ? 1 : 0)).get();
  }, UINT64_MAX / 2);
  const Node mapped = map_torch_object(built, builder);
  check_same_view(mapped, root_, [&](uint64_t mid, uint64_t vid) {
    const Array* a = arrays.at(mid);
    return as_storage(a->base) && vid < path_of.size() && a->where == path_of[vid];
  }, source);
  // What is written is what the layout attribute says, in its one canonical form (a tie whose
  // layout came after its tensors is two storages).
  std::string why;
  auto canonical = describe_layout(built, doc_paths(mapped, arrays), [](const Array& a) {
    const std::string_view b = as_text(a.base)->str();
    return std::vector<std::byte>(reinterpret_cast<const std::byte*>(b.data()), reinterpret_cast<const std::byte*>(b.data()) + b.size());
  }, UINT64_MAX / 2, &why);
  if (!canonical) fail(CKPT_ERR_INVALID_ARGUMENT, source + " describes an object ckpt does not write back exactly: " + why);
  meta->set(kLayoutAttribute, Value::string(std::move(*canonical)));
  return to_pyout(built, [&](const Array& a) {
    // A NumPy array is pickled inline (the other callback), which torch 1.13 loads whatever its dtype.
    check_torch_storage(a.dtype, a.where);
    if (const Storage* s = as_storage(a.base)) return s->key;
    const std::string_view b = as_text(a.base)->str();
    return add_storage(std::as_bytes(std::span(b.data(), b.size())));
  }, [&](const Array& a) {
    // A NumPy array's bytes go inside data.pkl, read back from the storage the tensor was
    // written to as it came: the layout (in meta, which convert writes last) may say it is an
    // array only after its bytes are in the archive. The storage stays too, for ckpt's
    // skeleton; the reader checks that the two hold the same bytes.
    const Storage* s = as_storage(a.base);
    const uint64_t n = ckpt::sdk::checked_nbytes(a.shape, ckpt::sdk::dtype_size(a.dtype), a.where);
    std::string out(n, '\0');
    zip_.read_back(offset_of_.at(s->key), std::as_writable_bytes(std::span(out.data(), out.size())));
    return out;
  });
}

}  // namespace ckpt_pytorch
