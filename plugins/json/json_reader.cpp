#include "json_reader.hpp"

#include "base64.hpp"

#include <cstring>

#include <sys/mman.h>

namespace ckpt_json {
namespace {

// The parse touches every page of the file; mapping them all in one call is cheaper than a
// page fault each (Linux 5.14+; elsewhere the faults just happen).
void populate(const ckpt::sdk::MappedFile& file) {
#ifdef MADV_POPULATE_READ
  if (file.size() > 0)
    ::madvise(const_cast<std::byte*>(file.data()), file.size(), MADV_POPULATE_READ);
#else
  (void)file;
#endif
}

}  // namespace

JsonReader::JsonReader(const std::string& path)
    : path_(path), file_(std::make_unique<ckpt::sdk::MappedFile>(path)) {
  file_->advise_sequential();
  populate(*file_);
  std::string_view text(reinterpret_cast<const char*>(file_->data()), file_->size());
  try {
    doc_ = parse_document(text);
  } catch (const ckpt::sdk::Error& e) {
    throw ckpt::sdk::Error(e.code(), path + ": " + e.what());
  }
  bool views = false;
  for (const TensorBytes& b : doc_.bytes) views = views || b.base64.data() != nullptr;
  if (!views) file_.reset();
}

void JsonReader::list(const ckpt::sdk::Visitor& visitor) { doc_.tree.list(visitor); }

void JsonReader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  if (id >= doc_.tree.tensors.size())
    ckpt::sdk::fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id) + " in " + path_);
  const auto& t = doc_.tree.tensors[id];
  if (dst.size() != t.nbytes)
    ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "tensor '" + std::string(t.name) + "' has " + std::to_string(t.nbytes) +
                                                   " bytes, the destination " + std::to_string(dst.size()));
  if (t.nbytes == 0) return;
  // The text was validated at open, and its decoded size checked against the shape.
  const TensorBytes& b = doc_.bytes[t.id];
  if (b.base64.data())
    base64_decode(b.base64, dst.data());
  else
    std::memcpy(dst.data(), b.bytes.data(), t.nbytes);
}

}  // namespace ckpt_json
