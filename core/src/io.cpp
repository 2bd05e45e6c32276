#include "atomic_write.hpp"
#include "shards.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/sharded.hpp>
#include <ckpt/write_source.hpp>

namespace ckpt {

namespace {
const Registry& reg(const Registry* r) { return r ? *r : Registry::global(); }
}  // namespace

void write_document(const Document& doc, const fs::path& path, const Format& format,
                    const SaveOptions& options) {
  detail::write_atomically(path, format, options.format_options, options.fsync,
                           [&](FormatWriter& writer) { writer.write(doc); });
}

void write_document(const Document& tree, const FormatWriter::TensorSource& source, const fs::path& path,
                    const Format& format, const SaveOptions& options) {
  detail::write_atomically(path, format, options.format_options, options.fsync,
                           [&](FormatWriter& writer) { writer.write(tree, source); });
}

void write_document(const Document& doc, const fs::path& path, const SaveOptions& options) {
  write_document(doc, path, reg(options.registry).for_writing(path, options.format), options);
}

std::shared_ptr<FormatReader> open(const fs::path& path, const LoadOptions& options) {
  if (sharded::is_sharded(path)) return sharded::open(path, options);
  if (auto entry = detail::sharded_entry(path)) {
    if (entry->filename() == detail::kShardIndex || entry->filename().string().ends_with(".index.json"))
      return detail::open_sharded(*entry, options);
    return open(*entry, options);  // a folder of one model.safetensors
  }
  const Registry& r = reg(options.registry);
  const Format format = r.for_reading(path, options.format);
  auto reader = format.open_reader(path, options.format_options);
  r.check_one_reading(path, format);
  return reader;
}

Document read_document(const fs::path& path, const LoadOptions& options) {
  auto reader = open(path, options);
  Document doc = reader->load(options.map);
  if (options.verify) {
    VerifyReport r = verify_document(doc);
    if (!r.ok()) {
      std::string msg = "'" + path.string() + "' failed verification:";
      for (const auto& p : r.problems) msg += "\n  " + p;
      throw IntegrityError(msg);
    }
  }
  return doc;
}

void save(const Checkpoint& checkpoint, const fs::path& path, const SaveOptions& options) {
  Document doc = checkpoint.to_document();
  add_integrity(doc);
  write_document(doc, path, options);
}

Checkpoint load(const fs::path& path, const LoadOptions& options) {
  return Checkpoint::from_document(read_document(path, options), path.string());
}

}  // namespace ckpt
