// Saving a document whose tensor bytes are not in memory: the writer asks `source` for each
// tensor as it writes it (the model registry pulls blobs this way). Kept out of io.hpp so that
// the callers of io.hpp do not depend on format_io.hpp's writer interface.
#pragma once

#include <ckpt/format_io.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <filesystem>

namespace ckpt {

// Written as every save is (io.hpp's write_document): atomically, under a temporary that holds
// the lock `ckpt gc` respects, refusing a target that is not a regular file.
void write_document(const Document& tree, const FormatWriter::TensorSource& source, const std::filesystem::path& path,
                    const Format& format, const SaveOptions& options = {});

}  // namespace ckpt
