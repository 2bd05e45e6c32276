#include "pt_writer.hpp"

#include "torch_layout.hpp"
#include "unpickler.hpp"

#include <cstring>

namespace ckpt_pytorch {

using ckpt::sdk::fail;
using namespace ckpt_pickle;

namespace {

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

PtWriter::PtWriter(const std::string& path, bool floats_as_tensors) : zip_(path), floats_as_tensors_(floats_as_tensors) {}

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
}

std::string PtWriter::add_storage(std::span<const std::byte> data) {
  std::string key = std::to_string(next_key_++);
  zip_.add(kArchive + std::string("data/") + key, data);
  return key;
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
  t.key = add_storage(data);
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
    return PyOut::tensor(t.key, t.dtype, t.shape);
  };
  ctx.number = [&](double f) {
    if (!floats_as_tensors_) return PyOut::floating(f);
    return PyOut::tensor(add_storage(std::as_bytes(std::span(&f, 1))), CKPT_DTYPE_F64, {});
  };
  ctx.step_tensor = [&](float f) { return PyOut::tensor(add_storage(std::as_bytes(std::span(&f, 1))), CKPT_DTYPE_F32, {}); };
  const std::string pkl = pickle(torch_object(root_, ctx));
  zip_.add(kArchive + std::string("data.pkl"), bytes_of(pkl));
  zip_.add(kArchive + std::string("version"), bytes_of("3\n"));
  zip_.add(kArchive + std::string("byteorder"), bytes_of("little"));
  const std::string skeleton = write_skeleton(root_, tensors_);
  zip_.add(kArchive + std::string(kSkeletonName), bytes_of(skeleton));
  zip_.close();
}

}  // namespace ckpt_pytorch
