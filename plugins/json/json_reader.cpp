#include "json_reader.hpp"

#include "base64.hpp"
#include "json_parser.hpp"

#include <cstring>
#include <type_traits>

#include <sys/mman.h>

namespace ckpt::jsonfmt {
namespace {

// `strings` holds the ckpt_str array a string[] value points into.
ckpt_value to_value(const AttrValue& v, std::vector<ckpt_str>& strings) {
  return std::visit(
      [&](const auto& x) -> ckpt_value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) return sdk::make_bool(x);
        else if constexpr (std::is_same_v<T, int64_t>) return sdk::make_int(x);
        else if constexpr (std::is_same_v<T, double>) return sdk::make_float(x);
        else if constexpr (std::is_same_v<T, std::string>) return sdk::make_string(x);
        else if constexpr (std::is_same_v<T, std::vector<uint8_t>>) return sdk::make_bools(x);
        else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return sdk::make_ints(x);
        else if constexpr (std::is_same_v<T, std::vector<double>>) return sdk::make_floats(x);
        else {
          strings.clear();
          for (const auto& s : x) strings.push_back({s.data(), s.size()});
          return sdk::make_strings(strings);
        }
      },
      v);
}

// The parse touches every page of the file; mapping them all in one call is cheaper than a
// page fault each (Linux 5.14+; elsewhere the faults just happen).
void populate(const sdk::MappedFile& file) {
#ifdef MADV_POPULATE_READ
  if (file.size() > 0)
    ::madvise(const_cast<std::byte*>(file.data()), file.size(), MADV_POPULATE_READ);
#else
  (void)file;
#endif
}

}  // namespace

JsonReader::JsonReader(const std::string& path)
    : path_(path), file_(std::make_unique<sdk::MappedFile>(path)) {
  file_->advise_sequential();
  populate(*file_);
  std::string_view text(reinterpret_cast<const char*>(file_->data()), file_->size());
  try {
    tree_ = parse_document(text);
  } catch (const sdk::Error& e) {
    throw sdk::Error(e.code(), path + ": " + e.what());
  }
  bool views = false;
  for (const TensorRec& t : tree_.tensors) views = views || t.base64.data() != nullptr;
  if (!views) file_.reset();
}

void JsonReader::list(const sdk::Visitor& visitor) { list_group(visitor, tree_.groups.at(0)); }

// Recursion is bounded: the parser refuses groups deeper than kMaxGroupDepth.
void JsonReader::list_group(const sdk::Visitor& visitor, const GroupRec& group) {
  visitor.begin_group(group.name);
  std::vector<ckpt_str> strings;
  for (const AttrRec& a : group.attrs) visitor.attribute(a.name, to_value(a.value, strings));
  for (const ChildRef& c : group.children) {
    if (c.is_group) {
      list_group(visitor, tree_.groups[c.index]);
    } else {
      const TensorRec& t = tree_.tensors[c.index];
      visitor.tensor(t.name, t.dtype, t.shape, t.nbytes, c.index);
    }
  }
  visitor.end_group();
}

void JsonReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  if (id >= tree_.tensors.size())
    sdk::fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " in " + path_);
  const TensorRec& t = tree_.tensors[id];
  if (dst.size() != t.nbytes)
    sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + t.name + "' has " + std::to_string(t.nbytes) +
                                             " bytes, the destination " + std::to_string(dst.size()));
  if (t.nbytes == 0) return;
  // The text was validated at open, and its decoded size checked against the shape.
  if (t.base64.data())
    base64_decode(t.base64, dst.data());
  else
    std::memcpy(dst.data(), t.bytes.data(), t.nbytes);
}

}  // namespace ckpt::jsonfmt
