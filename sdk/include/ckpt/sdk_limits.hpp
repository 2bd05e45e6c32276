// What a reader may spend on one file, whatever the file says (docs/reliability.md, "Threat
// model"). Formats whose files can describe more than they hold (a pickle's memo repeats a
// shared object anywhere, a tensor view repeats its storage, an HDF5 dataset never written
// reads as its fill value) bound that excess here, so that memory stays within twice the
// tensor bytes a file really holds plus 64 MiB, and time near-linear in the file's size.
// Both bounds are reader options (`-r max_document_bytes=N`, `-r max_expansion=BYTES`) for the
// rare honest file beyond them.
#pragma once

#include <ckpt/sdk.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace ckpt::sdk {

// How deep groups may nest (the root group is depth 0) in formats that nest them by their own
// syntax: a reader refuses deeper files with CKPT_ERR_LIMIT and a writer refuses to write them,
// so that list() and the parsers' stacks stay bounded whatever a hostile file says.
inline constexpr size_t kMaxGroupDepth = 1024;

struct ReadLimits {
  // Tensor bytes a file may list beyond twice the bytes its storages hold (views that repeat
  // their storage: shared, broadcast, stride 0), or, for HDF5, bytes never written.
  static constexpr uint64_t kDefaultExpansion = uint64_t{64} << 20;
  // What the document a mapping emits may cost (groups, attributes, tensors, by what a reader
  // and the host hold for each): 16 MiB plus 16 bytes per byte of the input, which no honest
  // file reaches without repeating shared objects.
  static constexpr uint64_t kBaseDocumentBytes = uint64_t{16} << 20;
  static constexpr uint64_t kDocumentBytesPerInputByte = 16;

  uint64_t max_expansion = kDefaultExpansion;
  std::optional<uint64_t> max_document_bytes;

  uint64_t document_bytes_for(uint64_t input_bytes) const {
    return max_document_bytes.value_or(kBaseDocumentBytes + kDocumentBytesPerInputByte * input_bytes);
  }

  // Reads (and so consumes) the options max_document_bytes and max_expansion.
  static ReadLimits parse(Options& options) {
    ReadLimits l;
    auto number = [&](const char* key) -> std::optional<uint64_t> {
      const std::string v = options.get(key, "");
      if (v.empty()) return std::nullopt;
      uint64_t n = 0;
      auto r = std::from_chars(v.data(), v.data() + v.size(), n);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size())
        fail(CKPT_ERR_INVALID_ARGUMENT, std::string("option ") + key + "='" + v + "': expected a non-negative integer");
      return n;
    };
    if (auto e = number("max_expansion")) l.max_expansion = *e;
    l.max_document_bytes = number("max_document_bytes");
    return l;
  }

  // Fails when `listed` tensor bytes exceed twice `stored` plus max_expansion (the message
  // starts with `source` unless it is empty: the host names the file already).
  void check_expansion(uint64_t listed, uint64_t stored, const std::string& source, const std::string& what) const {
    const unsigned __int128 allowed = static_cast<unsigned __int128>(stored) * 2 + max_expansion;
    if (listed > allowed)
      fail(CKPT_ERR_LIMIT, (source.empty() ? "" : source + ": ") + what + " list " + std::to_string(listed) + " tensor bytes over " +
                               std::to_string(stored) + " bytes of storage; a reader allows twice the storage plus " +
                               std::to_string(max_expansion) + " bytes (option max_expansion)");
  }
};

}  // namespace ckpt::sdk
