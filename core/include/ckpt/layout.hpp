// Layout adapters: the host-side code that maps the native structure a format plugin lists (an
// ONNX graph's nodes, a Keras weight file's groups, a torch checkpoint dict) onto ckpt's schema
// (docs/schema.md) and back. A plugin is a codec only: it lists its file as stored and writes a
// document as given. FormatReader::tree() hands the plugin's listing to the first adapter that
// recognises it; FormatWriter::write() asks each adapter for the native members a document
// implies in the target format. A new layout is a class here and one register_layout() call: no codec
// changes (docs/architecture.md, "Adding a layout").
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/options.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt {

// What an adapter may know of the file it reads besides its listing.
struct LayoutSource {
  std::string_view format;  // the plugin's format name ("onnx")
  std::string file;         // for messages: errors start with 'file':
  Options options;          // the read options the plugin was opened with (a layout's own among them)
  // Reads a listed tensor's bytes (its path in the listing) into a buffer of its size, for the
  // few small tensors a layout needs the values of (an ONNX Reshape's target shape).
  std::function<void(const std::string& path, std::span<std::byte> dst)> read;
};

// A tensor of the schema's reading that is a listed tensor with its dimensions permuted
// (Keras keeps a kernel as [in, out], the schema as [out, in]): dimension i is the listed
// tensor's dimension perm[i], and the schema's tensor has that shape. The host reads it lazily:
// blocks of the stored tensor's rows, each scattered into place; it is never mapped.
struct Transposition {
  std::string path;  // in the schema's reading
  std::vector<int> perm;
};

// A listing mapped onto the schema, every tensor it moved ({schema path, listed path}; tensors
// not named keep their listed path) and those it transposed.
struct SchemaDocument {
  Document doc;
  std::vector<std::pair<std::string, std::string>> moved;
  std::vector<Transposition> transposed;
};

class LayoutAdapter {
 public:
  virtual ~LayoutAdapter() = default;
  virtual std::string_view name() const = 0;
  // Whether `native`, listed by a plugin of `source.format`, is in this layout.
  virtual bool recognises(const Document& native, const LayoutSource& source) const = 0;
  // The schema's reading of a recognised listing; a FormatError naming source.file when the
  // listing is in this layout but inconsistent (a file whose two readings disagree).
  virtual SchemaDocument to_schema(Document native, const LayoutSource& source) const = 0;
  // What a writer of `format` gets after the document's own root members (groups only: the
  // native structure the schema implies, such as an ONNX graph), or nullopt when this layout
  // does not write that format. The document itself is written as it is, not a copy of it:
  // convert fills meta/integrity while the writer walks it, and streams tensors by path.
  virtual std::optional<Group> to_native(const Document& schema, std::string_view format) const = 0;
};

// The adapters in the order they are asked: ckpt's own, then those registered, in order.
std::vector<std::shared_ptr<const LayoutAdapter>> layout_adapters();
// Adds an adapter (a program's own layout); a name already registered is a UsageError.
void register_layout(std::shared_ptr<const LayoutAdapter> adapter);

}  // namespace ckpt
